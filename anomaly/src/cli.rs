//! `sensor baseline show|reset|accept`: the baseline database, read and
//! changed directly (SQLite WAL, so while the sensor runs too). Changes are
//! also queued for a running sensor, which applies them on its next persist.

use crate::store::Store;
use crate::{Seen, Service};
use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/var/lib/sensor/baseline.db";

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// What was learned: every service, or one in detail, with recent anomalies.
    Show {
        service: Option<String>,
        /// Baseline database (default /var/lib/sensor/baseline.db).
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Forget one service's baseline (it learns again), or everything.
    Reset {
        service: Option<String>,
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
    /// Learn an anomaly as normal (its id is in the anomaly event and in `show`).
    Accept {
        id: String,
        #[arg(long, value_name = "PATH")]
        db: Option<PathBuf>,
    },
}

fn open(db: &Option<PathBuf>) -> anyhow::Result<Store> {
    let path = db.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    if !path.exists() {
        bail!(
            "no baseline database at {} (the sensor writes it when [anomaly] is on; another path: --db)",
            path.display()
        );
    }
    Store::open(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn run_cli(cmd: BaselineCommand) -> anyhow::Result<i32> {
    match cmd {
        BaselineCommand::Show { service, db, format } => {
            let store = open(&db)?;
            let services = store.services(service.as_deref()).context("reading baselines")?;
            if let Some(name) = &service
                && services.is_empty()
            {
                eprintln!("no baseline for service {name:?} in {}", store.path.display());
                return Ok(1);
            }
            let anomalies = store.anomalies(service.as_deref(), 50).context("reading anomalies")?;
            let pending = store.pending_overrides().unwrap_or(0);
            match format {
                Format::Json => {
                    let v = serde_json::json!({
                        "global": store.global().unwrap_or_default(),
                        "services": services.iter().map(|(n, s)| (n.clone(), serde_json::to_value(s).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
                        "anomalies": anomalies,
                        "pending_overrides": pending,
                    });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Format::Table => {
                    let mut out = String::new();
                    match &service {
                        Some(_) => detail(&mut out, &services[0].0, &services[0].1),
                        None => table(&mut out, &services),
                    }
                    if !anomalies.is_empty() {
                        let _ = writeln!(out, "\nrecent anomalies (accept with `sensor baseline accept ID`):");
                        for a in anomalies.iter().take(20) {
                            let _ = writeln!(out, "  {}  {:<16} x{:<4} {}", a.id, a.kind, a.count, a.message);
                        }
                    }
                    if pending > 0 {
                        let _ = writeln!(out, "\n{pending} reset/accept pending for the running sensor's next persist");
                    }
                    print!("{out}");
                }
            }
            Ok(0)
        }
        BaselineCommand::Reset { service, db } => {
            let mut store = open(&db)?;
            let n = store.reset(service.as_deref(), now_ms()).context("reset")?;
            match &service {
                Some(s) if n == 0 => println!("no stored baseline for {s:?}; a running sensor forgets it too"),
                Some(s) => println!("reset the baseline of {s}: it learns again"),
                None => println!("reset {n} baselines: everything learns again"),
            }
            Ok(0)
        }
        BaselineCommand::Accept { id, db } => {
            let mut store = open(&db)?;
            match store.accept(&id, now_ms()).context("accept")? {
                Some(a) => {
                    println!("accepted {} ({}): {}", a.id, a.kind, a.message);
                    Ok(0)
                }
                None => {
                    eprintln!("no anomaly with id {id:?} in {}", store.path.display());
                    Ok(1)
                }
            }
        }
    }
}

fn flagged<'a>(it: impl Iterator<Item = &'a Seen>) -> usize {
    it.filter(|s| s.flagged_ms.is_some()).count()
}

fn state(s: &Service) -> String {
    match s.learned_ms {
        Some(_) => "learned".into(),
        None => "learning".into(),
    }
}

fn table(out: &mut String, services: &[(String, Service)]) {
    let w = services.iter().map(|(n, _)| n.len()).max().unwrap_or(7).clamp(7, 60);
    let _ = writeln!(
        out,
        "{:<w$}  {:<8}  {:>8}  {:>8}  {:>4}  {:>4}  {:>5}  {:>7}  {:>4}  {:>7}",
        "SERVICE", "STATE", "ACTIVE_S", "OBS", "OUT", "IN", "PORTS", "LINEAGE", "EXES", "FLAGGED"
    );
    for (n, s) in services {
        let f = flagged(s.outbound.values().map(|p| &p.seen))
            + flagged(s.inbound.values().map(|p| &p.seen))
            + flagged(s.ports.values())
            + flagged(s.lineage.values())
            + flagged(s.executables.values());
        let _ = writeln!(
            out,
            "{:<w$}  {:<8}  {:>8}  {:>8}  {:>4}  {:>4}  {:>5}  {:>7}  {:>4}  {:>7}",
            n,
            state(s),
            s.active_ms / 1000,
            s.observations,
            s.outbound.len(),
            s.inbound.len(),
            s.ports.len(),
            s.lineage.len(),
            s.executables.len(),
            f
        );
    }
}

fn mark(s: &Seen) -> &'static str {
    if s.flagged_ms.is_some() { "  [flagged]" } else { "" }
}

fn detail(out: &mut String, name: &str, s: &Service) {
    let _ = writeln!(out, "{name}: {}, {} s active, {} observations", state(s), s.active_ms / 1000, s.observations);
    for (title, map) in [("outbound", &s.outbound), ("inbound", &s.inbound)] {
        let _ = writeln!(out, "{title} peers ({}):", map.len());
        for (peer, p) in map {
            let lat = p
                .latency
                .as_ref()
                .filter(|l| l.n > 0)
                .map(|l| format!(", latency ~{:.2} ms (ln sd {:.2}, n {})", l.typical_ms(), l.sd(), l.n))
                .unwrap_or_default();
            let err = p
                .errors
                .as_ref()
                .filter(|e| e.n > 0)
                .map(|e| format!(", errors {:.1}%", e.rate * 100.0))
                .unwrap_or_default();
            let _ = writeln!(out, "  {peer}: {} connections{lat}{err}{}", p.seen.count, mark(&p.seen));
        }
    }
    let _ = writeln!(out, "listening ports ({}):", s.ports.len());
    for (port, p) in &s.ports {
        let _ = writeln!(out, "  {port}{}", mark(p));
    }
    for (title, map) in [("lineage", &s.lineage), ("executables", &s.executables)] {
        let _ = writeln!(out, "{title} ({}):", map.len());
        for (k, p) in map {
            let _ = writeln!(out, "  {k} (x{}){}", p.count, mark(p));
        }
    }
}

/// For tests and callers that hold a path.
pub fn default_path() -> &'static Path {
    Path::new(DEFAULT_PATH)
}
