//! One end-to-end test per default rule (rules/default, contract in issue #8):
//! each performs the real behaviour on this machine, safely (temp dirs, fake
//! homes, throwaway overlays over system directories in a private mount
//! namespace, a throwaway network namespace, a cgroup named like a docker
//! container), under a sensor running the embedded default rules, and asserts
//! the alert: rule, severity, title, ATT&CK ids and the triggering event's
//! key fields. Where the rule has a cheap near-miss, the test performs it
//! first and asserts it raised nothing once the later alert has arrived (the
//! pipeline keeps kernel order), so no test sleeps to prove a negative.
//!
//! The sensor sees the whole machine and tests run two at a time: every
//! assertion is keyed by the pid of a child the test spawned or by a unique
//! path.

mod containers;
mod credential_access;
mod evasion;
mod execution;
mod network;
mod persistence;

use sensor_e2e::{Sensor, get, s, shared_with_default_rules, u};
use serde_json::Value;
use std::time::Duration;

/// For `no_alert` once a later alert of the same test has been seen.
pub const NOW: Duration = Duration::ZERO;

pub fn sensor() -> &'static Sensor {
    shared_with_default_rules()
}

pub fn pid_is(e: &Value, pid: u32) -> bool {
    u(e, &["process", "pid"]) == pid as u64
}

pub fn me() -> u32 {
    std::process::id()
}

pub fn path_is(e: &Value, path: &str) -> bool {
    s(e, &["file", "path"]) == path
}

pub fn args_contain(e: &Value, needle: &str) -> bool {
    get(e, &["process", "args"]).as_array().is_some_and(|a| a.iter().any(|x| x.as_str().unwrap_or("").contains(needle)))
}

/// The alert record's own fields: rule, severity, and the metadata every
/// default rule must carry (title, message, ATT&CK ids).
pub fn check(alert: &Value, rule: &str, severity: &str) {
    assert_eq!(s(alert, &["type"]), "alert", "{alert}");
    assert_eq!(s(alert, &["rule"]), rule, "{alert}");
    assert_eq!(s(alert, &["severity"]), severity, "{rule}: {alert}");
    assert!(!s(alert, &["title"]).is_empty(), "{rule}: no title: {alert}");
    assert!(!s(alert, &["message"]).is_empty(), "{rule}: no message: {alert}");
    let mitre = get(alert, &["mitre"]).as_array().cloned().unwrap_or_default();
    assert!(
        !mitre.is_empty() && mitre.iter().all(|m| m.as_str().is_some_and(|m| m.starts_with('T'))),
        "{rule}: ATT&CK ids missing: {alert}"
    );
}

/// `alert.event.<path>` as a string.
pub fn ev<'a>(alert: &'a Value, path: &[&str]) -> &'a str {
    s(&alert["event"], path)
}

/// Removes a file on drop (for behaviour outside the scratch dir, /dev/shm).
pub struct RemoveOnDrop(pub std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A per-test unique short token for names and paths.
pub fn token() -> String {
    format!("{:x}", sensor_e2e::unique() % 0xff_ffff_ffff)
}

/// Rules whose severity depends on context (in a container, by a debugger,
/// under a shell...) are written as a base rule plus sibling rules that
/// escalate or grade it (one severity per rule id): `id` itself, `id_*`, and
/// the siblings named here.
const SIBLINGS: &[(&str, &str)] =
    &[("exec_from_writable_dir", "exec_from_dev_shm"), ("container_escape_mount_ns", "nsenter_init_namespaces")];

pub fn in_family(rule: &str, id: &str) -> bool {
    rule == id
        || rule.strip_prefix(id).is_some_and(|rest| rest.starts_with('_'))
        || SIBLINGS.iter().any(|(i, r)| *i == id && *r == rule)
}

fn rank(severity: &str) -> usize {
    ["info", "low", "medium", "high", "critical"].iter().position(|x| *x == severity).unwrap_or(usize::MAX)
}

/// For a graded rule: waits for an alert of `id`'s family at `severity` on a
/// matching event, then asserts no alert of the family rates that event
/// higher. Returns the alert at `severity`.
pub fn wait_for_graded(id: &str, severity: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let sensor = sensor();
    let what = format!("{id} (or a graded sibling) at {severity}");
    let a = sensor.wait_for_alert_where(
        &what,
        |a| in_family(s(a, &["rule"]), id) && s(a, &["severity"]) == severity,
        &pred,
    );
    let higher: Vec<Value> = sensor.matching(|x| {
        s(x, &["type"]) == "alert"
            && in_family(s(x, &["rule"]), id)
            && rank(s(x, &["severity"])) > rank(severity)
            && pred(&x["event"])
    });
    assert!(higher.is_empty(), "{id}: expected {severity}, also rated higher: {higher:#?}");
    check(&a, s(&a, &["rule"]), severity);
    a
}
