//! Command-line interface. Subcommands of other crates (policy, audit,
//! alerts) are defined there and only mounted here.

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "sensor", version, about = "eBPF security and observability agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load the kernel probes and stream enriched events.
    Run(RunArgs),
    /// Report what this kernel offers and which mechanism each capability uses.
    Probe {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate, test, evaluate and list Rego rules.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Query and verify the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// List and retry alert deliveries in the outbox.
    #[command(subcommand)]
    Alerts(alerting::AlertsCommand),
    /// The running sensor's service map (who talks to whom), from its admin socket.
    Topology(crate::topology_cli::TopologyArgs),
    /// Learned baselines (anomaly detection): show, reset, accept an anomaly as normal.
    #[command(subcommand)]
    Baseline(anomaly::cli::BaselineCommand),
}

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// TOML configuration file (every key optional; unknown keys are errors).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Write events as JSON lines to PATH, or "-" for stdout, or "none".
    #[arg(long, value_name = "PATH|-")]
    pub events_out: Option<String>,
    /// Host name reported in events.
    #[arg(long)]
    pub host: Option<String>,
    /// Event types to report (comma-separated), e.g. exec,open,connect.
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
    /// Extra rule directory (repeatable), loaded after the embedded rules.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Audit database path (default /var/lib/sensor/audit.db).
    #[arg(long, value_name = "PATH")]
    pub audit_db: Option<PathBuf>,
    /// Do not keep an audit trail.
    #[arg(long)]
    pub no_audit: bool,
    /// Do not evaluate rules.
    #[arg(long)]
    pub no_policy: bool,
    /// Serve Prometheus metrics at HOST:PORT (or :PORT on loopback) under /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<String>,
    /// The admin socket `sensor topology` talks to (default /run/sensor/admin.sock).
    #[arg(long, value_name = "PATH")]
    pub admin_socket: Option<PathBuf>,
    /// Exit after this many seconds (for tests and benchmarks).
    #[arg(long, hide = true)]
    pub duration_secs: Option<u64>,
}

impl RunArgs {
    /// Flags override the file.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(v) = &self.events_out {
            cfg.events_out = Some(v.clone());
        }
        if let Some(v) = &self.host {
            cfg.host = Some(v.clone());
        }
        if let Some(v) = &self.events {
            cfg.kernel.events = v.clone();
        }
        cfg.policy.rules_dirs.extend(self.rules.iter().cloned());
        if let Some(p) = &self.audit_db {
            cfg.audit.path = p.clone();
        }
        if let Some(a) = &self.metrics_addr {
            cfg.metrics.addr = Some(a.clone());
        }
        if let Some(p) = &self.admin_socket {
            cfg.admin_socket = Some(p.clone());
        }
        if self.no_audit {
            cfg.audit.enabled = false;
        }
    }
}
