//! `opa test`-style runner: every `test_*` rule in a `*_test.rego` file must be true.

use crate::error::{ErrorKind, PolicyError, PolicyErrors};
use crate::scan;
use crate::sources::{self, FileKind};
use regorus::{Engine, Value};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    /// Full rule path, e.g. `data.sensor.rules.read_shadow_test.test_cat_alerts`.
    pub name: String,
    pub file: String,
    pub passed: bool,
    /// Why it failed: the value it produced instead of `true`, or the error.
    pub failure: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// Loads rules, libraries, data and tests from the sources, then runs every test
/// whose full name contains `filter` (all when `None`). Load errors abort the run.
pub fn run_tests(
    embedded: &[(&str, &str)],
    dirs: &[PathBuf],
    filter: Option<&str>,
) -> Result<TestReport, PolicyErrors> {
    let mut errors = Vec::new();
    let files = sources::collect(embedded, dirs, &mut errors);
    let mut engine = Engine::new();
    // Same semantics as the evaluation engine: builtin type errors are errors.
    engine.set_strict_builtin_errors(true);
    let mut tests = Vec::new();
    for f in &files {
        match f.kind {
            FileKind::Rego | FileKind::RegoTest => match engine.add_policy(f.name.clone(), f.content.clone()) {
                Ok(package) if f.kind == FileKind::RegoTest => {
                    for (rule, _, _) in scan::top_level_rules(&scan::tokenize(&f.content)) {
                        if rule.starts_with("test_") {
                            tests.push((format!("{package}.{rule}"), f.name.clone()));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(PolicyError::from_regorus(&f.name, ErrorKind::Syntax, &e)),
            },
            FileKind::Json | FileKind::Yaml => {
                let parsed = if f.kind == FileKind::Json {
                    Value::from_json_str(&f.content)
                } else {
                    Value::from_yaml_str(&f.content)
                };
                if let Err(e) = parsed.and_then(|v| engine.add_data(v)) {
                    errors.push(PolicyError::new(&f.name, (0, 0), ErrorKind::Data, format!("{e:#}")));
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(PolicyErrors(errors));
    }
    let mut report = TestReport::default();
    for (name, file) in tests {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let start = Instant::now();
        let outcome = engine.eval_rule(name.clone());
        let duration = start.elapsed();
        let failure = match outcome {
            Ok(Value::Bool(true)) => None,
            Ok(Value::Undefined) => Some("undefined (a condition did not hold)".to_string()),
            Ok(v) => Some(format!("evaluated to {} instead of true", v.to_json_str().unwrap_or_default().trim())),
            Err(e) => Some(format!("error: {e:#}")),
        };
        report.results.push(TestResult { name, file, passed: failure.is_none(), failure, duration });
    }
    Ok(report)
}
