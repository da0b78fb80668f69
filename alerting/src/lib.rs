//! Alerting: turns policy alerts into notifications and SIEM records.
//!
//! * [`Alert`] is the value the policy engine produces.
//! * [`AlertingConfig`] is the `[alerting]` section of the sensor's TOML.
//! * [`Alerter`] runs the pipeline: durable SQLite outbox -> dedup/aggregation
//!   -> per-sink routing, rate limit, retries -> webhook / Slack / syslog /
//!   file / stdout. Delivery is at-least-once; `Alert::id` is the idempotency
//!   key receivers can deduplicate on (HTTP `Idempotency-Key` header, syslog
//!   structured data `id`, CEF `externalId`, OCSF `finding_info.uid`).
//! * [`AlertsCommand`] / [`run_cli`] implement `sensor alerts list|retry`.
//!
//! The crate knows nothing of eBPF.

pub mod alert;
pub mod cli;
pub mod config;
pub mod format;
pub mod outbox;
mod pipeline;
pub mod sinks;

pub use alert::{Alert, Severity, new_alert_id};
pub use cli::{AlertsCommand, ListFormat, run_cli, run_cli_to};
pub use config::{
    AlertingConfig, ConfigErrors, DedupConfig, RateLimitConfig, RecordFormat, RetryConfig, SinkConfig, SinkType,
    SyslogTransport,
};
pub use pipeline::{
    Alerter, AlerterStats, DegradedReason, INTERNAL_RULE_PREFIX, RATE_LIMIT_RULE, ShutdownReport, SinkHealthEvent,
    SinkStats,
};
pub use sinks::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign};

/// Errors from starting the pipeline. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("Alerter::start must be called from within a tokio runtime")]
    NoRuntime,
    #[error("outbox: {what}: {source}")]
    Outbox {
        what: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why `submit` refused an alert (every refusal is counted in the stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("alert queue full; alert dropped (counted in submit_dropped)")]
    QueueFull,
    #[error("alerter is shut down")]
    Closed,
}
