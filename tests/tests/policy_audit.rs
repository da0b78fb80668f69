//! Rules and the audit trail in the running sensor: a real behaviour fires
//! the embedded rule, the alert and its event land in the SQLite trail, the
//! trail verifies, and a broken rule set on reload keeps the old one.

use sensor_e2e::{Sensor, get, s, sensor_bin, test_dir, unique};
use std::process::Command;

fn watch_config(prefixes: &[&str]) -> String {
    let list: Vec<String> = prefixes.iter().map(|p| format!("\"{p}\"")).collect();
    format!("[kernel.file_filter]\nwatch_prefixes = [{}]\nwatch_only = true\n", list.join(", "))
}

#[test]
fn reading_shadow_fires_the_rule_and_lands_in_the_audit_trail() {
    let sensor = Sensor::start(&watch_config(&["/etc/shadow"]), &[]);
    let out = Command::new("/usr/bin/cat").arg("/etc/shadow").output().unwrap();
    assert!(out.status.success());
    let alert =
        sensor.wait_for("read_shadow alert", |e| s(e, &["type"]) == "alert" && s(e, &["rule"]) == "read_shadow");
    assert_eq!(s(&alert, &["severity"]), "high");
    assert_eq!(s(&alert, &["message"]), "/usr/bin/cat read /etc/shadow");
    assert_eq!(get(&alert, &["mitre"]), &serde_json::json!(["T1003.008"]));
    assert_eq!(s(&alert, &["event", "process", "exe"]), "/usr/bin/cat");
    assert_eq!(s(&alert, &["event", "file", "path"]), "/etc/shadow");
    assert!(!s(&alert, &["title"]).is_empty() && !s(&alert, &["host"]).is_empty());

    let (status, stderr) = sensor.stop_with(libc::SIGTERM);
    assert!(status.success(), "{stderr}");
    let db = sensor.audit_db();
    let db = db.to_str().unwrap();
    let q = Command::new(sensor_bin())
        .args(["audit", "query", "--db", db, "--rule", "read_shadow", "--format", "jsonl"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&q.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(s(&rows[0], &["event", "process", "exe"]), "/usr/bin/cat");
    // the event itself is in the trail too, queryable by path and exe
    let q = Command::new(sensor_bin())
        .args([
            "audit",
            "query",
            "--db",
            db,
            "--type",
            "open",
            "--path",
            "/etc/shadow",
            "--exe",
            "*/cat",
            "--format",
            "jsonl",
        ])
        .output()
        .unwrap();
    assert!(q.status.success());
    assert!(!q.stdout.is_empty(), "open of /etc/shadow not in the trail");
    let v = Command::new(sensor_bin()).args(["audit", "verify", "--db", db]).output().unwrap();
    assert!(v.status.success(), "verify: {}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
}

#[test]
fn executing_a_binary_from_tmp_fires_the_rule() {
    let dir = test_dir(&std::env::temp_dir(), "sensor-exec-tmp");
    let sensor = Sensor::start(&watch_config(&[dir.to_str().unwrap()]), &[]);
    let bin = dir.join(format!("dropped-{}", unique()));
    std::fs::copy("/bin/true", &bin).unwrap();
    assert!(Command::new(&bin).status().unwrap().success());
    let alert = sensor.wait_for("exec_from_writable_dir alert", |e| {
        s(e, &["type"]) == "alert" && s(e, &["event", "process", "exe"]) == bin.to_str().unwrap()
    });
    assert_eq!(s(&alert, &["rule"]), "exec_from_writable_dir");
}

#[test]
fn sighup_with_a_broken_rule_keeps_the_old_rules_and_reports_it() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("extra.rego"),
        "package sensor.rules.extra_marker\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"low\", \"events\": [\"exec\"]}\n\
         alert contains {\"message\": \"m\"} if { input.process.args[1] == \"extra-marker-arg\" }\n",
    )
    .unwrap();
    let sensor = Sensor::start(&watch_config(&["/etc/shadow"]), &["--rules", rules.path().to_str().unwrap()]);
    Command::new("/bin/echo").arg("extra-marker-arg").output().unwrap();
    sensor.wait_for("extra rule fires", |e| s(e, &["rule"]) == "extra_marker");

    std::fs::write(rules.path().join("broken.rego"), "package sensor.rules.broken\nthis is not rego\n").unwrap();
    // SAFETY: signalling the child sensor.
    unsafe { libc::kill(sensor.pid as i32, libc::SIGHUP) };
    let failed = sensor.wait_for("policy_reload_failed", |e| s(e, &["type"]) == "policy_reload_failed");
    assert!(failed.to_string().contains("broken.rego"), "names the file: {failed}");

    // the old set is still in force
    Command::new("/usr/bin/cat").arg("/etc/shadow").output().unwrap();
    sensor.wait_for("read_shadow still fires", |e| s(e, &["rule"]) == "read_shadow");
}

#[test]
fn an_invalid_rule_directory_refuses_to_start() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("bad.rego"), "package sensor.rules.bad\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"urgent\", \"events\": [\"exec\"]}\nalert contains {\"message\": \"m\"} if { true }\n").unwrap();
    let out = Command::new(sensor_bin())
        .args(["run", "--no-audit", "--events-out", "none", "--rules", rules.path().to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad.rego") && err.contains("urgent"), "{err}");
}

#[test]
fn policy_test_runs_the_embedded_rule_tests() {
    let out = Command::new(sensor_bin()).args(["policy", "test"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let last = text.lines().last().unwrap_or("");
    assert!(last.ends_with("0 failed") && last.contains("passed"), "closing line: {last}");
}
