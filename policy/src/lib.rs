//! The sensor's Rego policy engine.
//!
//! Detection rules are Rego modules under `package sensor.rules.<id>` with a constant
//! `metadata` object and an `alert` partial set (see `rules/README.md`). This crate
//! loads them (embedded set + directories + JSON/YAML data documents), validates
//! them with positioned errors, compiles them to regorus RVM programs, indexes them
//! by event type, evaluates events (JSON values) into [`Alert`]s with a decision
//! cache and per-rule instruction/time limits, and hot-reloads them atomically.
//! It knows nothing about eBPF.

mod cli;
mod config;
mod engine;
mod error;
mod model;
mod prefilter;
mod reload;
mod scan;
mod set;
mod sources;
mod testing;

pub use cli::{PolicyCommand, RuleSourceArgs, run_cli};
pub use config::{Exception, PolicyConfig, RuleOverride};
pub use engine::{PolicyEngine, RuleCost};
pub use error::{ErrorKind, PolicyError, PolicyErrors};
pub use model::{
    Alert, EVENT_TYPES, Evaluation, PolicyCounters, RuleRuntimeError, RuntimeErrorKind, Severity, UnknownSeverity,
};
pub use reload::{ReloadSummary, ReloadableEngine, WatchHandle};
pub use set::{PolicySet, RULES_PACKAGE_PREFIX, RuleInfo};
pub use testing::{TestReport, TestResult, run_tests};
