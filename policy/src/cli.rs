//! `sensor policy ...` subcommands.

use crate::config::PolicyConfig;
use crate::engine::PolicyEngine;
use crate::set::PolicySet;
use crate::testing::run_tests;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// Which rules `eval` and `list` load.
#[derive(Debug, Clone, PartialEq, Eq, Default, clap::Args)]
pub struct RuleSourceArgs {
    /// Extra rule directories (repeatable), loaded with the embedded set.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Do not load the embedded rule set.
    #[arg(long)]
    pub no_default_rules: bool,
    /// Overrides file (JSON, YAML or TOML), as in `[policy] overrides_file`.
    #[arg(long)]
    pub overrides: Option<PathBuf>,
}

impl RuleSourceArgs {
    fn config(self) -> PolicyConfig {
        PolicyConfig {
            default_rules: !self.no_default_rules,
            rules_dirs: self.rules,
            overrides_file: self.overrides,
            watch: false,
            ..PolicyConfig::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum PolicyCommand {
    /// Validate rules, data documents and tests; exit non-zero on any error.
    Check {
        /// Rule directories (default: the embedded rule set).
        dirs: Vec<PathBuf>,
    },
    /// Run the `test_*` rules of `*_test.rego` files, like `opa test`.
    Test {
        /// Rule directories (default: the embedded rule set).
        dirs: Vec<PathBuf>,
        /// Run only tests whose full name contains this text.
        #[arg(long)]
        run: Option<String>,
    },
    /// Print the alerts (JSON) that events produce.
    Eval {
        /// A JSON event, a JSON array of events, or JSON lines.
        #[arg(long)]
        event: PathBuf,
        #[command(flatten)]
        source: RuleSourceArgs,
    },
    /// List rules with id, severity, events and state.
    List {
        #[command(flatten)]
        source: RuleSourceArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a policy subcommand and returns the process exit code.
pub fn run_cli(cmd: PolicyCommand, embedded: &[(&str, &str)]) -> anyhow::Result<i32> {
    // An explicit directory list replaces the embedded set for check/test.
    let pick = |dirs: &[PathBuf]| -> &[(&str, &str)] { if dirs.is_empty() { embedded } else { &[] } };
    match cmd {
        PolicyCommand::Check { dirs } => match PolicySet::check(pick(&dirs), &dirs) {
            Ok(set) => {
                let enabled = set.rules().iter().filter(|r| r.enabled).count();
                println!("ok: {} rules ({enabled} enabled) in {} files", set.rules().len(), set.files().len());
                Ok(0)
            }
            Err(errors) => {
                for e in errors.errors() {
                    eprintln!("{e}");
                }
                eprintln!("{} error(s)", errors.len());
                Ok(1)
            }
        },
        PolicyCommand::Test { dirs, run } => {
            let report = match run_tests(pick(&dirs), &dirs, run.as_deref()) {
                Ok(r) => r,
                Err(errors) => {
                    for e in errors.errors() {
                        eprintln!("{e}");
                    }
                    println!("0 passed, 0 failed");
                    return Ok(1);
                }
            };
            for r in &report.results {
                let status = if r.passed { "PASS" } else { "FAIL" };
                println!("{status} {} ({:.1?}) [{}]", r.name, r.duration, r.file);
                if let Some(why) = &r.failure {
                    println!("     {why}");
                }
            }
            println!("{} passed, {} failed", report.passed(), report.failed());
            Ok(i32::from(report.failed() > 0))
        }
        PolicyCommand::Eval { event, source } => {
            let config = source.config();
            let mut engine = match PolicyEngine::load(&config, embedded) {
                Ok(e) => e,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(1);
                }
            };
            let events = read_events(&event)?;
            let mut alerts = Vec::new();
            let mut failed = false;
            for ev in &events {
                let eval = engine.evaluate(ev);
                for e in &eval.errors {
                    failed = true;
                    eprintln!("rule {}: {:?}: {}", e.rule, e.kind, e.message);
                }
                alerts.extend(eval.alerts);
            }
            println!("{}", serde_json::to_string_pretty(&alerts)?);
            Ok(i32::from(failed))
        }
        PolicyCommand::List { source, json } => {
            let config = source.config();
            let set = match PolicySet::load(&config, embedded) {
                Ok(s) => s,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(1);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(set.rules())?);
                return Ok(0);
            }
            let width = set.rules().iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
            println!("{:width$}  {:8}  {:8}  {:24}  TITLE", "ID", "SEVERITY", "STATE", "EVENTS");
            for r in set.rules() {
                let state = if r.enabled { "enabled" } else { "disabled" };
                println!(
                    "{:width$}  {:8}  {:8}  {:24}  {}",
                    r.id,
                    r.severity.as_str(),
                    state,
                    r.events.join(","),
                    r.title
                );
            }
            Ok(0)
        }
    }
}

/// One JSON event, a JSON array of events, or JSON lines.
fn read_events(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Array(events)) => Ok(events),
        Ok(event @ serde_json::Value::Object(_)) => Ok(vec![event]),
        Ok(other) => anyhow::bail!("{}: expected an event object or an array of events, got {other}", path.display()),
        Err(whole) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .with_context(|| format!("{}:{}: not JSON ({whole}) nor JSON lines", path.display(), i + 1))
            })
            .collect(),
    }
}
