#![allow(dead_code)]

use policy::PolicyConfig;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub fn default_rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/default")
}

/// A temp dir holding the given files (relative path, contents).
pub fn rules_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, content) in files {
        write(dir.path(), rel, content);
    }
    dir
}

pub fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn config_for(dirs: &[&Path]) -> PolicyConfig {
    PolicyConfig {
        default_rules: false,
        rules_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        watch: false,
        ..PolicyConfig::default()
    }
}

/// A rule file with the given id, events, severity and alert body.
pub fn rule(id: &str, events: &str, severity: &str, body: &str) -> String {
    format!(
        "package sensor.rules.{id}\nimport rego.v1\n\nmetadata := {{\n  \"title\": \"Rule {id}\",\n  \"severity\": \"{severity}\",\n  \"events\": {events},\n  \"mitre\": [\"T1003\"],\n}}\n\nalert contains {{\"message\": msg}} if {{\n{body}\n}}\n"
    )
}

pub fn open_event(exe: &str, path: &str) -> Value {
    json!({
        "ts": "2026-11-25T17:04:41.123456789Z", "host": "h", "type": "open",
        "process": {"pid": 100, "tid": 100, "ppid": 1, "uid": 0, "euid": 0, "gid": 0, "egid": 0,
            "comm": exe.rsplit('/').next().unwrap(), "exe": exe, "args": [exe, path], "cwd": "/root",
            "container_id": null, "lineage": ["/usr/bin/bash", "/usr/sbin/sshd"]},
        "file": {"path": path, "raw_path": path, "flags": ["O_RDONLY"], "mode": 0, "result": 3}
    })
}

pub fn exec_event(exe: &str, container: Option<&str>) -> Value {
    json!({
        "ts": "2026-11-25T17:04:41.123456789Z", "host": "h", "type": "exec",
        "process": {"pid": 200, "tid": 200, "ppid": 1, "uid": 1000, "euid": 1000, "gid": 1000, "egid": 1000,
            "comm": exe.rsplit('/').next().unwrap(), "exe": exe, "args": [exe, "-c", "id"], "cwd": "/",
            "container_id": container, "lineage": ["/usr/bin/containerd-shim"]}
    })
}

pub fn connect_event(exe: &str, daddr: &str, dport: u16) -> Value {
    json!({
        "ts": "2026-11-25T17:04:41.123456789Z", "host": "h", "type": "connect",
        "process": {"pid": 300, "tid": 300, "ppid": 1, "uid": 0, "euid": 0, "gid": 0, "egid": 0,
            "comm": exe.rsplit('/').next().unwrap(), "exe": exe, "args": [exe], "cwd": "/",
            "container_id": null, "lineage": []},
        "net": {"proto": "tcp", "family": "ipv4", "saddr": "10.0.0.5", "sport": 40000,
            "daddr": daddr, "dport": dport, "direction": "outbound"}
    })
}
