//! Mapping of stored events to OCSF 1.1 for batch SIEM import.

use serde_json::{Map, Value, json};

use crate::reader::StoredRecord;

pub const OCSF_VERSION: &str = "1.1.0";

/// (class_uid, category_uid, class_name, activity_id, activity_name) for an event type.
fn class_of(typ: &str, ev: &Value) -> (u32, u32, &'static str, u32, &'static str) {
    const PROC: (u32, u32, &str) = (1007, 1, "Process Activity");
    const FILE: (u32, u32, &str) = (1001, 1, "File System Activity");
    const NET: (u32, u32, &str) = (4001, 4, "Network Activity");
    let with = |c: (u32, u32, &'static str), a: u32, n: &'static str| (c.0, c.1, c.2, a, n);
    match typ {
        "exec" | "fork" | "clone" => with(PROC, 1, "Launch"),
        "exit" => with(PROC, 2, "Terminate"),
        "setuid" | "setgid" => with(PROC, 5, "Set User ID"),
        "ptrace" => with(PROC, 4, "Inject"),
        "open" | "openat" => {
            let flags = ev.pointer("/file/flags").and_then(Value::as_array);
            let has = |f: &str| flags.is_some_and(|a| a.iter().any(|x| x.as_str() == Some(f)));
            if has("O_CREAT") { with(FILE, 1, "Create") } else { with(FILE, 14, "Open") }
        }
        "read" => with(FILE, 2, "Read"),
        "write" | "truncate" => with(FILE, 3, "Update"),
        "unlink" | "rmdir" => with(FILE, 4, "Delete"),
        "rename" => with(FILE, 5, "Rename"),
        "chmod" | "chown" => with(FILE, 7, "Set Security"),
        "link" | "symlink" | "mkdir" | "create" => with(FILE, 1, "Create"),
        "mount" => with(FILE, 12, "Mount"),
        "umount" => with(FILE, 13, "Unmount"),
        "connect" | "accept" => with(NET, 1, "Open"),
        "close" => with(NET, 2, "Close"),
        "listen" => with(NET, 7, "Listen"),
        "dns" => (4003, 4, "DNS Activity", 1, "Query"),
        "alert" => (2004, 2, "Detection Finding", 1, "Create"),
        _ => (0, 0, "Base Event", 99, "Other"),
    }
}

fn severity_id(s: Option<&str>) -> u32 {
    match s.map(str::to_ascii_lowercase).as_deref() {
        Some("info") | Some("informational") => 1,
        Some("low") => 2,
        Some("medium") => 3,
        Some("high") => 4,
        Some("critical") => 5,
        _ => 0,
    }
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<&Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        m.insert(k.to_string(), v.clone());
    }
}

fn process(p: &Value) -> Value {
    let mut m = Map::new();
    put(&mut m, "pid", p.get("pid"));
    put(&mut m, "tid", p.get("tid"));
    put(&mut m, "name", p.get("comm"));
    put(&mut m, "cwd", p.get("cwd"));
    if let Some(args) = p.get("args").and_then(Value::as_array) {
        let cmd: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        m.insert("cmd_line".into(), json!(cmd.join(" ")));
    }
    if let Some(exe) = p.get("exe").filter(|v| v.is_string()) {
        m.insert("file".into(), json!({"path": exe, "type_id": 1}));
    }
    // OCSF user.uid is a string.
    if let Some(uid) = p.get("uid").filter(|v| !v.is_null()) {
        m.insert("user".into(), json!({"uid": uid.to_string()}));
    }
    if let Some(ppid) = p.get("ppid").filter(|v| !v.is_null()) {
        m.insert("parent_process".into(), json!({"pid": ppid}));
    }
    if let Some(c) = p.get("container_id").filter(|v| v.is_string()) {
        m.insert("container".into(), json!({"uid": c}));
    }
    Value::Object(m)
}

fn endpoint(ip: Option<&Value>, port: Option<&Value>) -> Value {
    let mut m = Map::new();
    put(&mut m, "ip", ip);
    put(&mut m, "port", port);
    Value::Object(m)
}

/// Fill the class-specific objects of `ev` (an event, or an alert's triggering event) into `out`.
fn event_body(out: &mut Map<String, Value>, ev: &Value) {
    let pr = ev.get("process").cloned().unwrap_or(Value::Null);
    if pr.is_object() {
        let p = process(&pr);
        out.insert("actor".into(), json!({"process": p.clone()}));
        if let Some(c) = p.get("container") {
            out.insert("container".into(), c.clone());
        }
    }
    let typ = ev.get("type").and_then(Value::as_str).unwrap_or("");
    if matches!(typ, "exec" | "fork" | "clone" | "exit" | "setuid" | "setgid" | "ptrace") && pr.is_object() {
        out.insert("process".into(), process(&pr));
    }
    if let Some(f) = ev.get("file").filter(|f| f.is_object()) {
        let mut m = Map::new();
        put(&mut m, "path", f.get("path"));
        if let Some(name) = f.get("path").and_then(Value::as_str).and_then(|p| p.rsplit('/').next()) {
            m.insert("name".into(), json!(name));
        }
        m.insert("type_id".into(), json!(1));
        out.insert("file".into(), Value::Object(m));
        if let Some(np) = f.get("new_path").filter(|v| v.is_string()) {
            out.insert("file_result".into(), json!({"path": np, "type_id": 1}));
        }
    }
    if let Some(n) = ev.get("net").filter(|n| n.is_object()) {
        out.insert("src_endpoint".into(), endpoint(n.get("saddr"), n.get("sport")));
        out.insert("dst_endpoint".into(), endpoint(n.get("daddr"), n.get("dport")));
        let mut ci = Map::new();
        put(&mut ci, "protocol_name", n.get("proto"));
        match n.get("direction").and_then(Value::as_str) {
            Some("inbound") => ci.insert("direction_id".into(), json!(1)),
            Some("outbound") => ci.insert("direction_id".into(), json!(2)),
            _ => None,
        };
        match n.get("family").and_then(Value::as_str) {
            Some("ipv4") => ci.insert("protocol_ver_id".into(), json!(4)),
            Some("ipv6") => ci.insert("protocol_ver_id".into(), json!(6)),
            _ => None,
        };
        out.insert("connection_info".into(), Value::Object(ci));
    }
    if let Some(d) = ev.get("dns").filter(|d| d.is_object()) {
        let mut q = Map::new();
        for k in ["query", "qname", "name", "hostname"] {
            if let Some(h) = d.get(k).filter(|v| v.is_string()) {
                q.insert("hostname".into(), h.clone());
                break;
            }
        }
        for k in ["qtype", "type"] {
            if let Some(t) = d.get(k).filter(|v| !v.is_null()) {
                q.insert("type".into(), json!(t.as_str().map_or_else(|| t.to_string(), str::to_string)));
                break;
            }
        }
        out.insert("query".into(), Value::Object(q));
        if let Some(a) = d.get("answers").filter(|v| v.is_array()) {
            out.insert("answers".into(), a.clone());
        }
    }
}

/// Convert one stored record to an OCSF event object.
pub fn to_ocsf(rec: &StoredRecord) -> Value {
    let ev: Value = serde_json::from_str(&rec.json).unwrap_or(Value::Null);
    let typ = rec.typ.as_deref().unwrap_or("");
    let (class_uid, category_uid, class_name, activity_id, activity_name) = class_of(typ, &ev);
    let mut out = Map::new();
    out.insert("class_uid".into(), json!(class_uid));
    out.insert("class_name".into(), json!(class_name));
    out.insert("category_uid".into(), json!(category_uid));
    out.insert("activity_id".into(), json!(activity_id));
    out.insert("activity_name".into(), json!(activity_name));
    out.insert("type_uid".into(), json!(class_uid as u64 * 100 + activity_id as u64));
    out.insert("time".into(), json!(rec.ts_ns.div_euclid(1_000_000)));
    let sev = ev.get("severity").and_then(Value::as_str);
    out.insert("severity_id".into(), json!(if class_uid == 2004 { severity_id(sev) } else { 1 }));
    out.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "uid": rec.seq.to_string(),
            "product": {"name": "sensor", "vendor_name": "sensor"},
            "original_time": ev.get("ts"),
        }),
    );
    if let Some(h) = ev.get("host").filter(|h| h.is_string()) {
        out.insert("device".into(), json!({"hostname": h, "type_id": 0}));
    }
    if class_uid == 2004 {
        let trig = ev.get("event").cloned().unwrap_or(Value::Null);
        event_body(&mut out, &trig);
        let attacks: Vec<Value> = ev
            .get("mitre")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(|t| json!({"technique": {"uid": t}})).collect())
            .unwrap_or_default();
        out.insert(
            "finding_info".into(),
            json!({
                "uid": format!("{}-{}", rec.rule.as_deref().unwrap_or("alert"), rec.seq),
                "title": ev.get("title").cloned().unwrap_or_else(|| json!(rec.rule)),
                "desc": ev.get("message"),
                "analytic": {"name": rec.rule, "type_id": 1, "type": "Rule"},
                "attacks": attacks,
            }),
        );
        out.insert("status_id".into(), json!(1));
        if !trig.is_null() {
            out.insert("evidences".into(), json!([{"data": trig}]));
        }
    } else {
        event_body(&mut out, &ev);
    }
    if class_uid == 0 {
        out.insert("unmapped".into(), json!({"type": typ, "event": ev}));
    }
    Value::Object(out)
}
