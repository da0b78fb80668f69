#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use audit::{AuditConfig, AuditStore, ByteSize, HumanDuration};
use serde_json::{Value, json};

/// Fast-committing config for tests; retention off unless a test sets it.
pub fn cfg(path: &Path) -> AuditConfig {
    AuditConfig {
        path: path.to_path_buf(),
        batch_rows: 500,
        batch_interval: HumanDuration(Duration::from_millis(20)),
        max_age: HumanDuration(Duration::ZERO),
        max_bytes: ByteSize(0),
        checkpoint_every: 25,
        degraded_retry: HumanDuration(Duration::from_millis(100)),
        retention_interval: HumanDuration(Duration::from_millis(50)),
        ..Default::default()
    }
}

pub fn ts_ago(secs: i64) -> String {
    audit::time::format_rfc3339_ns(chrono::Utc::now().timestamp_nanos_opt().unwrap() - secs * 1_000_000_000)
}

/// A realistic event of the given type; `i` varies pid, paths and addresses.
pub fn ev(i: u64, typ: &str) -> Value {
    let mut e = json!({
        "ts": ts_ago(60), "host": "h", "type": typ, "n": i,
        "process": {"pid": 1000 + i, "tid": 1000 + i, "ppid": 1, "uid": i % 3, "euid": 0, "gid": 0, "egid": 0,
            "comm": "cat", "exe": if i.is_multiple_of(2) { "/usr/bin/cat" } else { "/usr/local/bin/curl" },
            "args": ["cat", format!("/etc/file{i}")], "cwd": "/root",
            "container_id": if i.is_multiple_of(5) { json!("abcdef0123456789") } else { Value::Null }},
    });
    match typ {
        "open" | "unlink" | "chmod" => {
            e["file"] = json!({"path": format!("/etc/file{i}"), "flags": ["O_RDONLY"], "mode": 0, "result": 3})
        }
        "rename" => {
            e["file"] = json!({"path": format!("/tmp/a{i}"), "new_path": format!("/tmp/b{i}"), "flags": [], "mode": 0, "result": 0})
        }
        "connect" | "accept" | "close" => {
            e["net"] = json!({"proto": "tcp", "family": "ipv4", "saddr": "10.0.0.1", "sport": 40000 + i,
            "daddr": format!("192.0.2.{}", i % 250), "dport": if i.is_multiple_of(2) { 443 } else { 22 }, "direction": "outbound"})
        }
        "dns" => e["dns"] = json!({"query": "example.com", "qtype": "A"}),
        _ => {}
    }
    e
}

pub fn alert(i: u64, rule: &str, severity: &str) -> Value {
    json!({"type": "alert", "ts": ts_ago(30), "host": "h", "rule": rule, "severity": severity,
        "title": format!("{rule} fired"), "message": "m", "mitre": ["T1003.008"], "event": ev(i, "open")})
}

/// Record and retry until accepted (tests want every event in).
pub fn record(store: &AuditStore, e: &Value) {
    for _ in 0..100_000 {
        if store.record_event(e) {
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    panic!("event never accepted");
}

pub fn sqlite3(db: &Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3").arg(db).arg(sql).output().expect("run sqlite3");
    assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
