//! `sensor alerts list|retry`: operates directly on the outbox file, so it
//! works whether or not the sensor is running (a running sensor notices the
//! change within about a second and re-reads the outbox).

use std::path::PathBuf;

use anyhow::Context;

use crate::config::DEFAULT_OUTBOX;
use crate::outbox::{ListFilter, Outbox};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum AlertsCommand {
    /// List deliveries in the outbox (newest first).
    List {
        /// Only deliveries still waiting to be sent.
        #[arg(long, conflicts_with = "failed")]
        pending: bool,
        /// Only dead-lettered deliveries.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value = DEFAULT_OUTBOX)]
        outbox: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead-lettered deliveries back in the queue.
    Retry {
        /// Alert id (idempotency key) to retry.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Retry every dead-lettered delivery.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value = DEFAULT_OUTBOX)]
        outbox: PathBuf,
    },
}

/// Runs a CLI command; returns the process exit code (0 ok, 1 nothing matched).
pub fn run_cli(cmd: AlertsCommand) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    run_cli_to(cmd, &mut out)
}

/// Same as [`run_cli`] writing to `out` (for tests and embedding).
pub fn run_cli_to(cmd: AlertsCommand, out: &mut dyn std::io::Write) -> anyhow::Result<i32> {
    match cmd {
        AlertsCommand::List { pending, failed, outbox, format, limit } => {
            let ob = open(&outbox)?;
            let filter = if pending {
                ListFilter::Pending
            } else if failed {
                ListFilter::Failed
            } else {
                ListFilter::All
            };
            let rows = ob.list(filter, limit).context("reading outbox")?;
            match format {
                ListFormat::Json => {
                    for r in &rows {
                        writeln!(out, "{}", serde_json::to_string(r)?)?;
                    }
                }
                ListFormat::Table => {
                    writeln!(
                        out,
                        "{:<36}  {:<16}  {:<10}  {:>8}  {:<8}  {:<20}  {:<24}  LAST ERROR",
                        "ID", "SINK", "STATE", "ATTEMPTS", "SEVERITY", "CREATED", "RULE"
                    )?;
                    for r in &rows {
                        writeln!(
                            out,
                            "{:<36}  {:<16}  {:<10}  {:>8}  {:<8}  {:<20}  {:<24}  {}",
                            r.id,
                            r.sink,
                            r.state,
                            r.attempts,
                            r.severity,
                            r.created,
                            r.rule,
                            r.last_error.as_deref().unwrap_or("-").replace('\n', " ")
                        )?;
                    }
                    let c = ob.counts().context("reading outbox")?;
                    writeln!(
                        out,
                        "-- {} shown; outbox: {} pending, {} delivered, {} dead, {} rate-limited",
                        rows.len(),
                        c[0],
                        c[1],
                        c[2],
                        c[3]
                    )?;
                }
            }
            Ok(0)
        }
        AlertsCommand::Retry { id, all, outbox } => {
            let mut ob = open(&outbox)?;
            let id = if all { None } else { id };
            if let Some(i) = &id
                && !ob.alert_exists(i).context("reading outbox")?
            {
                writeln!(out, "no alert with id {i}")?;
                return Ok(1);
            }
            let n = ob.retry(id.as_deref()).context("updating outbox")?;
            writeln!(out, "{n} deliveries re-queued")?;
            Ok(if n == 0 && id.is_some() { 1 } else { 0 })
        }
    }
}

fn open(path: &std::path::Path) -> anyhow::Result<Outbox> {
    if !path.exists() {
        anyhow::bail!("outbox {} does not exist", path.display());
    }
    Outbox::open_existing(path).with_context(|| format!("opening outbox {}", path.display()))
}
