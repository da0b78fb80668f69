//! `sensor audit ...`: the subcommands and their output formats.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::config::{DEFAULT_DB_PATH, valid_type_name};
use crate::ocsf::to_ocsf;
use crate::reader::{AuditReader, DbStats, HeadAnchor, QueryFilter, StoredRecord, VerifyOptions};
use crate::record::{KIND_ALERT, KIND_MARKER, Severity};
use crate::time::{format_rfc3339_ns, format_short, now_ns, parse_time_spec};

/// Exit code of `verify` when the chain is broken or the key does not fit
/// (errors such as a missing database or key file exit 1).
pub const EXIT_TAMPERED: i32 = 2;
/// Exit code of `verify` on a keyed trail checked without its key: the
/// structure is intact but the hashes could not be checked.
pub const EXIT_UNVERIFIED: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Ocsf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// Audit database to read.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_DB_PATH)]
    pub db: PathBuf,
}

/// Filters shared by query, tail and export.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Start time: a duration ago (15m, 2h, 7d) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// End time (exclusive): a duration ago or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Event type(s), comma separated (exec, open, connect, alert, ...).
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
    #[arg(long)]
    pub pid: Option<u64>,
    /// Executable path glob (e.g. '/usr/bin/*').
    #[arg(long, value_name = "GLOB")]
    pub exe: Option<String>,
    /// Container id or id prefix.
    #[arg(long, value_name = "ID")]
    pub container: Option<String>,
    #[arg(long)]
    pub uid: Option<u64>,
    /// File path glob (e.g. '/etc/*').
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Remote address (exact, or a glob such as '10.0.*').
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Remote port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Alert rule name (or glob).
    #[arg(long)]
    pub rule: Option<String>,
    /// Minimum alert severity.
    #[arg(long, value_enum)]
    pub severity: Option<Severity>,
    /// Substring of the event JSON.
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
}

impl FilterArgs {
    pub fn to_filter(&self, now: i64) -> anyhow::Result<QueryFilter> {
        let since_ns = self.since.as_deref().map(|s| parse_time_spec(s, now)).transpose()?;
        let until_ns = self.until.as_deref().map(|s| parse_time_spec(s, now)).transpose()?;
        if let (Some(s), Some(u)) = (since_ns, until_ns)
            && s >= u
        {
            bail!("--since ({}) is not before --until ({})", format_rfc3339_ns(s), format_rfc3339_ns(u));
        }
        for t in &self.types {
            if !valid_type_name(t) {
                bail!("invalid --type {t:?}: event types are lowercase words such as exec, open, connect, alert");
            }
        }
        for (flag, v) in [("--exe", &self.exe), ("--path", &self.path), ("--container", &self.container)] {
            if v.as_deref() == Some("") {
                bail!("{flag} must not be empty");
            }
        }
        Ok(QueryFilter {
            since_ns,
            until_ns,
            types: self.types.clone(),
            pid: self.pid,
            exe: self.exe.clone(),
            container: self.container.clone(),
            uid: self.uid,
            path: self.path.clone(),
            addr: self.addr.clone(),
            port: self.port,
            rule: self.rule.clone(),
            min_severity: self.severity,
            contains: self.contains.clone(),
            after_seq: None,
        })
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Search recorded events and alerts (newest `--limit` matches, printed oldest first).
    Query {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        filter: FilterArgs,
        /// Maximum records (0 = all).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Print the latest records, optionally following new ones.
    Tail {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        filter: FilterArgs,
        /// Records shown before following.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing new records as they are committed.
        #[arg(short, long)]
        follow: bool,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Counts by type, rule and severity; database size; time span.
    Stats {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, value_enum, default_value_t = StatsFormat::Text)]
        format: StatsFormat,
    },
    /// Check the hash chain; exits 2 naming the first modified, deleted, inserted or reordered record.
    ///
    /// Exit codes: 0 verified, 2 tampered (or the key does not fit), 3 keyed
    /// trail checked without its key (structure only), 1 error. Prints the
    /// chain head as SEQ:HEX: keep it elsewhere and pass it to --expect-head later.
    Verify {
        #[command(flatten)]
        db: DbArg,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Key of a keyed trail (the audit.key_file it was written with).
        #[arg(long, value_name = "PATH")]
        key_file: Option<PathBuf>,
        /// A head printed by an earlier verify (SEQ:HEX) that must still be in
        /// the chain unchanged: detects truncation followed by a rewrite.
        #[arg(long, value_name = "SEQ:HEX")]
        expect_head: Option<HeadAnchor>,
    },
    /// Write a new random HMAC key (32 bytes, mode 0600) for audit.key_file; never overwrites.
    Keygen {
        /// Where to write the key.
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Export records for SIEM import (JSON lines or OCSF JSON lines).
    Export {
        #[command(flatten)]
        db: DbArg,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// Run a subcommand, printing to stdout. Returns the process exit code.
pub fn run_cli(cmd: AuditCommand) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let res = run_cli_with(cmd, &mut out, &|| false).and_then(|c| {
        out.flush()?;
        Ok(c)
    });
    match res {
        // `sensor audit query | head` is not an error.
        Err(e) if is_broken_pipe(&e) => Ok(0),
        r => r,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Library form of [`run_cli`]: output goes to `out`; `tail --follow` stops when `stop()` is true.
pub fn run_cli_with(cmd: AuditCommand, out: &mut dyn Write, stop: &dyn Fn() -> bool) -> anyhow::Result<i32> {
    let now = now_ns();
    match cmd {
        AuditCommand::Query { db, filter, limit, format } => {
            let f = filter.to_filter(now)?;
            let r = AuditReader::open(&db.db)?;
            let mut p = Printer::new(format, out);
            p.begin()?;
            if limit == 0 {
                r.scan(&f, |rec| {
                    p.row(&rec)?;
                    Ok(true)
                })?;
            } else {
                for rec in r.query(&f, limit)? {
                    p.row(&rec)?;
                }
            }
            p.end()?;
            Ok(0)
        }
        AuditCommand::Tail { db, filter, lines, follow, format } => {
            if follow && format == OutputFormat::Json {
                bail!("--format json cannot be followed; use --format jsonl with --follow");
            }
            let mut f = filter.to_filter(now)?;
            let r = AuditReader::open(&db.db)?;
            let mut p = Printer::new(format, out);
            p.begin()?;
            // Position taken before the first query so nothing committed in between is missed;
            // the max with what was printed avoids printing a record twice.
            let mut last = r.last_seq()?;
            let recs = r.query(&f, lines.max(1))?;
            last = last.max(recs.last().map_or(0, |r| r.seq));
            for rec in recs.iter().skip(recs.len().saturating_sub(lines)) {
                p.row(rec)?;
            }
            p.flush()?;
            while follow && !stop() {
                std::thread::sleep(Duration::from_millis(250));
                f.after_seq = Some(last);
                r.scan(&f, |rec| {
                    last = last.max(rec.seq);
                    p.row(&rec)?;
                    Ok(true)
                })?;
                last = last.max(r.last_seq()?);
                p.flush()?;
            }
            p.end()?;
            Ok(0)
        }
        AuditCommand::Stats { db, format } => {
            let s = AuditReader::open(&db.db)?.stats()?;
            match format {
                StatsFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
                StatsFormat::Text => print_stats(out, &s)?,
            }
            Ok(0)
        }
        AuditCommand::Verify { db, json, key_file, expect_head } => {
            let r = AuditReader::open(&db.db)?;
            let rep = r.verify_with(&VerifyOptions { key_file, expect_head })?;
            let keyed = match &rep.key_id {
                Some(id) if rep.chain == "hmac-sha256" => format!("keyed chain (HMAC-SHA256, key id {id})"),
                _ => "unkeyed chain (SHA-256)".to_string(),
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rep)?)?;
            } else if let Some(p) = &rep.problem {
                writeln!(out, "FAILED: {}: {p}", db.db.display())?;
                writeln!(out, "{} records verified before the problem; {keyed}", rep.records)?;
            } else if !rep.hashes_checked {
                writeln!(
                    out,
                    "UNVERIFIED: {} is a {keyed}; without --key-file only its structure was checked \
                     (sequence, checkpoint links, head): {} records (seq {}..{}), {} checkpoints",
                    db.db.display(),
                    rep.records,
                    rep.first_seq,
                    rep.last_seq,
                    rep.checkpoints
                )?;
                writeln!(out, "head {}", rep.head())?;
            } else {
                writeln!(
                    out,
                    "OK: {} records (seq {}..{}), {} checkpoints, {keyed}",
                    rep.records, rep.first_seq, rep.last_seq, rep.checkpoints
                )?;
                if let Some(a) = &rep.anchor_checked {
                    writeln!(out, "expected head {a} is in the chain")?;
                }
                writeln!(out, "head {}", rep.head())?;
            }
            Ok(if !rep.ok() {
                EXIT_TAMPERED
            } else if !rep.hashes_checked {
                EXIT_UNVERIFIED
            } else {
                0
            })
        }
        AuditCommand::Keygen { path } => {
            let id = crate::keys::generate_key(&path)?;
            writeln!(
                out,
                "wrote a {}-byte key to {} (mode 0600, key id {id}); set [audit] key_file to it and keep a copy \
                 off this host: verification needs it",
                crate::keys::KEY_LEN,
                path.display()
            )?;
            Ok(0)
        }
        AuditCommand::Export { db, filter, format, output } => {
            let f = filter.to_filter(now)?;
            let r = AuditReader::open(&db.db)?;
            let mut file_out;
            let w: &mut dyn Write = match &output {
                Some(p) => {
                    file_out =
                        BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?);
                    &mut file_out
                }
                None => out,
            };
            r.scan(&f, |rec| {
                match format {
                    ExportFormat::Jsonl => writeln!(w, "{}", rec.json)?,
                    ExportFormat::Ocsf => writeln!(w, "{}", to_ocsf(&rec))?,
                }
                Ok(true)
            })?;
            w.flush()?;
            Ok(0)
        }
    }
}

fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", U[i]) }
}

fn print_stats(out: &mut dyn Write, s: &DbStats) -> std::io::Result<()> {
    writeln!(out, "database     {} (schema v{})", s.path.display(), s.schema_version)?;
    writeln!(
        out,
        "size         {} (file {}, WAL {}, {} free inside)",
        human_bytes(s.file_bytes + s.wal_bytes),
        human_bytes(s.file_bytes),
        human_bytes(s.wal_bytes),
        human_bytes(s.free_bytes)
    )?;
    match (s.first_seq, s.last_seq) {
        (Some(a), Some(b)) => writeln!(out, "records      {} (seq {a}..{b})", s.records)?,
        _ => writeln!(out, "records      0")?,
    }
    if let (Some(a), Some(b)) = (&s.first_ts, &s.last_ts) {
        writeln!(out, "time span    {a} .. {b}")?;
    }
    writeln!(out, "checkpoints  {}", s.checkpoints)?;
    for (title, rows) in [("by type", &s.by_type), ("by rule", &s.by_rule), ("by severity", &s.by_severity)] {
        if rows.is_empty() {
            continue;
        }
        writeln!(out, "{title}:")?;
        for (k, n) in rows {
            writeln!(out, "  {k:<32} {n:>12}")?;
        }
    }
    Ok(())
}

/// Terminal width: $COLUMNS, else the tty size, else a wide default for pipes.
fn term_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse::<usize>().ok()) {
        return c.clamp(40, 1000);
    }
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ only writes into the winsize struct we own; fd 1 may not be a tty,
    // in which case the call fails and we fall back.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col >= 40 { ws.ws_col as usize } else { 160 }
}

fn truncate_end(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut o: String = s.chars().take(w.saturating_sub(1)).collect();
    o.push('…');
    o
}

/// Keep the end of a path (the binary name matters more than /usr/local/...).
fn truncate_start(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    let mut o = String::from("…");
    o.extend(s.chars().skip(n - w.saturating_sub(1)));
    o
}

fn detail(rec: &StoredRecord) -> String {
    let v: Value = serde_json::from_str(&rec.json).unwrap_or(Value::Null);
    if rec.kind == KIND_ALERT {
        let sev = rec.severity.and_then(Severity::from_rank).map_or("?", Severity::as_str);
        let title = v.get("title").and_then(Value::as_str).unwrap_or("");
        return format!("[{sev}] {}: {title}", rec.rule.as_deref().unwrap_or("?"));
    }
    if rec.kind == KIND_MARKER {
        return v.to_string();
    }
    let mut parts = Vec::new();
    if let Some(p) = &rec.path {
        parts.push(p.clone());
        if let Some(np) = v.pointer("/file/new_path").and_then(Value::as_str) {
            parts.push(format!("-> {np}"));
        }
    }
    if let Some(n) = v.get("net").filter(|n| n.is_object()) {
        let g =
            |k: &str| n.get(k).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).unwrap_or_default();
        parts.push(format!(
            "{} {}:{} -> {}:{} {}",
            g("proto"),
            g("saddr"),
            g("sport"),
            g("daddr"),
            g("dport"),
            g("direction")
        ));
    }
    if rec.typ.as_deref() == Some("exec")
        && let Some(args) = v.pointer("/process/args").and_then(Value::as_array)
    {
        parts.push(args.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "));
    }
    if parts.is_empty()
        && let Some(d) = v.get("dns")
    {
        parts.push(d.to_string());
    }
    parts.join(" ")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

struct Printer<'a> {
    format: OutputFormat,
    out: &'a mut dyn Write,
    first: bool,
    width: usize,
}

impl<'a> Printer<'a> {
    fn new(format: OutputFormat, out: &'a mut dyn Write) -> Self {
        Printer { format, out, first: true, width: if format == OutputFormat::Table { term_width() } else { 0 } }
    }

    fn exe_width(&self) -> usize {
        (self.width / 5).clamp(12, 32)
    }

    fn begin(&mut self) -> std::io::Result<()> {
        match self.format {
            OutputFormat::Table => {
                let line = format!(
                    "{:<23} {:<8} {:>7} {:>6} {:<ew$} DETAIL",
                    "TIME (UTC)",
                    "TYPE",
                    "PID",
                    "UID",
                    "EXE",
                    ew = self.exe_width()
                );
                writeln!(self.out, "{}", truncate_end(&line, self.width))
            }
            OutputFormat::Json => write!(self.out, "["),
            OutputFormat::Csv => {
                writeln!(self.out, "seq,time,type,pid,uid,exe,container,path,daddr,dport,rule,severity,event")
            }
            OutputFormat::Jsonl => Ok(()),
        }
    }

    fn row(&mut self, r: &StoredRecord) -> std::io::Result<()> {
        let opt_i = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        match self.format {
            OutputFormat::Table => {
                let ew = self.exe_width();
                let line = format!(
                    "{:<23} {:<8} {:>7} {:>6} {:<ew$} {}",
                    format_short(r.ts_ns),
                    truncate_end(r.typ.as_deref().unwrap_or("-"), 8),
                    opt_i(r.pid),
                    opt_i(r.uid),
                    truncate_start(r.exe.as_deref().unwrap_or("-"), ew),
                    detail(r),
                );
                writeln!(self.out, "{}", truncate_end(&line, self.width))
            }
            OutputFormat::Json => {
                let sep = if self.first { "\n" } else { ",\n" };
                self.first = false;
                write!(self.out, "{sep}{}", r.json)
            }
            OutputFormat::Jsonl => writeln!(self.out, "{}", r.json),
            OutputFormat::Csv => {
                let sev = r.severity.and_then(Severity::from_rank).map(Severity::as_str).unwrap_or("");
                let cols = [
                    r.seq.to_string(),
                    format_rfc3339_ns(r.ts_ns),
                    r.typ.clone().unwrap_or_default(),
                    opt_i(r.pid),
                    opt_i(r.uid),
                    r.exe.clone().unwrap_or_default(),
                    r.container.clone().unwrap_or_default(),
                    r.path.clone().unwrap_or_default(),
                    r.daddr.clone().unwrap_or_default(),
                    opt_i(r.dport),
                    r.rule.clone().unwrap_or_default(),
                    sev.to_string(),
                    r.json.clone(),
                ];
                let line: Vec<String> = cols.iter().map(|c| csv_field(c)).collect();
                writeln!(self.out, "{}", line.join(","))
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    fn end(&mut self) -> std::io::Result<()> {
        if self.format == OutputFormat::Json {
            writeln!(self.out, "{}]", if self.first { "" } else { "\n" })?;
        }
        self.out.flush()
    }
}
