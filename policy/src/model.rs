//! Public data types: severities, alerts, evaluation results, counters.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Event types a rule may subscribe to in `metadata.events` (`"*"` means all).
pub const EVENT_TYPES: &[&str] = &[
    "exec",
    "fork",
    "exit",
    "open",
    "unlink",
    "rename",
    "chmod",
    "link",
    "symlink",
    "connect",
    "accept",
    "listen",
    "close",
    "dns",
    "ptrace",
    "module_load",
    "bpf",
    "memfd_create",
    "socket",
    "dup",
    "setuid",
    "mount",
    "namespace",
    "http",
    "redis",
    "pg",
    "conn_stats",
    "anomaly",
    "policy_reload_failed",
    "audit_degraded",
    "audit_recovered",
    "sink_degraded",
    "sink_recovered",
];

/// Alert severity; ordered `info < low < medium < high < critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (expected info, low, medium, high or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| UnknownSeverity(s.to_string()))
    }
}

/// One alert raised by a rule for one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Rule id (package's last segment unless `metadata.id` says otherwise).
    pub rule: String,
    /// Effective severity (after operator overrides).
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub mitre: Vec<String>,
    /// The triggering event, unchanged.
    pub event: serde_json::Value,
    /// Any other fields of the object the rule's `alert` produced.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Keys of [`Alert`] a rule cannot set through its alert object.
pub(crate) const RESERVED_ALERT_KEYS: &[&str] = &["rule", "severity", "title", "message", "mitre", "event"];

/// Why a rule failed at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeErrorKind {
    /// The per-evaluation instruction or time budget was exhausted.
    Limit,
    /// Any other evaluation error (type error, conflict, bad alert shape, ...).
    Error,
}

/// A rule that failed while evaluating one event; the other rules still ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRuntimeError {
    pub rule: String,
    pub kind: RuntimeErrorKind,
    pub message: String,
}

/// The outcome of evaluating one event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub alerts: Vec<Alert>,
    pub errors: Vec<RuleRuntimeError>,
    /// Alerts silenced by operator exceptions.
    pub suppressed: usize,
    /// Served from the decision cache.
    pub cached: bool,
    /// Generation of the policy set that evaluated this event (increments on reload).
    pub generation: u64,
}

/// Counter snapshot; counts are cumulative since the engine (or reloadable handle)
/// was created and survive reloads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyCounters {
    pub evaluations: u64,
    /// Rule executions (one event meeting N rules counts N; cache hits count 0).
    pub rule_evaluations: u64,
    pub alerts: u64,
    pub suppressed: u64,
    pub runtime_errors: u64,
    pub limit_hits: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub reloads: u64,
    pub reload_failures: u64,
    /// Runtime errors (including limit hits) per rule id.
    pub rule_errors: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
        assert_eq!(serde_json::to_string(&Severity::Critical).unwrap(), "\"critical\"");
    }
}
