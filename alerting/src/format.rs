//! Wire formats: RFC 5424 syslog framing, CEF, OCSF Detection Finding and
//! Slack Block Kit. Pure functions so tests can check them directly.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use crate::alert::{Alert, Severity};

// ---------------------------------------------------------------- RFC 5424

/// Syslog severity (RFC 5424 table 2) for an alert severity.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// PRINTUSASCII only (33..=126), at most `max` chars, "-" when empty: the
/// header fields of RFC 5424 allow nothing else.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s.chars().filter(|c| ('!'..='~').contains(c)).take(max).collect();
    if t.is_empty() { "-".into() } else { t }
}

/// SD-PARAM value escaping: `"`, `\` and `]` must be backslash-escaped.
fn sd_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// One RFC 5424 message (without transport framing).
pub fn rfc5424(facility: u8, app_name: &str, procid: u32, alert: &Alert, msg: &str) -> String {
    let pri = u16::from(facility.min(23)) * 8 + u16::from(syslog_severity(alert.severity));
    format!(
        "<{pri}>1 {ts} {host} {app} {procid} {msgid} [alert@32473 id=\"{id}\" rule=\"{rule}\" severity=\"{sev}\" count=\"{count}\"] {msg}",
        ts = alert.ts.to_rfc3339_opts(SecondsFormat::Micros, true),
        host = header_token(&alert.host, 255),
        app = header_token(app_name, 48),
        msgid = header_token(&alert.rule, 32),
        id = sd_escape(&alert.id),
        rule = sd_escape(&alert.rule),
        sev = alert.severity,
        count = alert.count,
    )
}

// ---------------------------------------------------------------- CEF

pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// CEF header fields: escape `\` and `|`; newlines are not allowed there.
pub fn cef_header_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '|' => o.push_str("\\|"),
            '\r' | '\n' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// CEF extension values: escape `\`, `=` and line breaks.
pub fn cef_ext_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '=' => o.push_str("\\="),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

/// `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`.
pub fn cef(alert: &Alert) -> String {
    let name = if alert.title.is_empty() { &alert.rule } else { &alert.title };
    let mut ext: Vec<(&str, String)> = vec![
        ("externalId", alert.id.clone()),
        ("rt", alert.ts.timestamp_millis().to_string()),
        ("cat", alert.rule.clone()),
        ("msg", alert.message.clone()),
    ];
    if !alert.host.is_empty() {
        ext.push(("dvchost", alert.host.clone()));
    }
    if alert.count != 1 {
        ext.push(("cnt", alert.count.to_string()));
    }
    if let Some(f) = alert.first_seen {
        ext.push(("start", f.timestamp_millis().to_string()));
    }
    if let Some(l) = alert.last_seen {
        ext.push(("end", l.timestamp_millis().to_string()));
    }
    for (key, path) in [
        ("dproc", "process.comm"),
        ("dpid", "process.pid"),
        ("filePath", "file.path"),
        ("dst", "net.daddr"),
        ("dpt", "net.dport"),
    ] {
        if let Some(v) = alert.event_str(path) {
            ext.push((key, v));
        }
    }
    let mut cs = 1;
    for (label, val) in [
        ("exe", alert.event_str("process.exe")),
        ("args", alert.event_str("process.args")),
        ("containerId", alert.event_str("process.container_id")),
        ("mitre", (!alert.mitre.is_empty()).then(|| alert.mitre.join(","))),
    ] {
        if let Some(v) = val {
            ext.push((cs_label(cs), label.to_string()));
            ext.push((cs_key(cs), v));
            cs += 1;
        }
    }
    let mut out = format!(
        "CEF:0|sensor|sensor|{}|{}|{}|{}|",
        cef_header_escape(env!("CARGO_PKG_VERSION")),
        cef_header_escape(&alert.rule),
        cef_header_escape(name),
        cef_severity(alert.severity)
    );
    for (i, (k, v)) in ext.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&cef_ext_escape(v));
    }
    out
}

fn cs_key(i: usize) -> &'static str {
    ["cs1", "cs2", "cs3", "cs4", "cs5", "cs6"][i - 1]
}
fn cs_label(i: usize) -> &'static str {
    ["cs1Label", "cs2Label", "cs3Label", "cs4Label", "cs5Label", "cs6Label"][i - 1]
}

/// Parses a CEF extension back into key/value pairs (used by tests and by
/// anyone validating our output): keys are `[A-Za-z0-9_]+` followed by `=`.
pub fn parse_cef_extension(ext: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = ext.chars().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    // Find next " key=" (unescaped) boundary from position i.
    let key_at = |pos: usize| -> Option<(String, usize)> {
        let mut j = pos;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        (j > pos && j < chars.len() && chars[j] == '=').then(|| (chars[pos..j].iter().collect(), j + 1))
    };
    while i < chars.len() {
        let Some((key, vstart)) = key_at(i) else {
            break;
        };
        let mut val = String::new();
        let mut j = vstart;
        while j < chars.len() {
            let c = chars[j];
            if c == '\\' && j + 1 < chars.len() {
                val.push(match chars[j + 1] {
                    'n' => '\n',
                    'r' => '\r',
                    o => o,
                });
                j += 2;
                continue;
            }
            if c == ' ' && key_at(j + 1).is_some() {
                break;
            }
            val.push(c);
            j += 1;
        }
        out.push((key, val));
        i = j + 1;
    }
    out
}

// ---------------------------------------------------------------- OCSF

pub fn ocsf_severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF 1.1 Detection Finding (class_uid 2004, activity Create).
pub fn ocsf(alert: &Alert) -> Value {
    let attacks: Vec<Value> = alert
        .mitre
        .iter()
        .map(|m| if m.starts_with("TA") { json!({"tactic": {"uid": m}}) } else { json!({"technique": {"uid": m}}) })
        .collect();
    let mut finding = json!({
        "uid": alert.id,
        "title": if alert.title.is_empty() { &alert.rule } else { &alert.title },
        "desc": alert.message,
        "types": [alert.rule],
        "analytic": {"name": alert.rule, "uid": alert.rule, "type_id": 1, "type": "Rule"},
    });
    if !attacks.is_empty() {
        finding["attacks"] = Value::Array(attacks);
    }
    let mut o = json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": ocsf_severity_id(alert.severity),
        "severity": capitalize(alert.severity.as_str()),
        "status_id": 1,
        "status": "New",
        "time": alert.ts.timestamp_millis(),
        "message": alert.message,
        "count": alert.count,
        "finding_info": finding,
        "metadata": {
            "version": "1.1.0",
            "uid": alert.id,
            "product": {"name": "sensor", "vendor_name": "sensor", "version": env!("CARGO_PKG_VERSION")},
        },
        "device": {"hostname": alert.host, "type_id": 0},
        "unmapped": {"event": alert.event},
    });
    if let Some(f) = alert.first_seen {
        o["start_time"] = json!(f.timestamp_millis());
    }
    if let Some(l) = alert.last_seen {
        o["end_time"] = json!(l.timestamp_millis());
    }
    let mut ev = Map::new();
    if alert.event_path("process").is_some() {
        let mut p = Map::new();
        if let Some(v) = alert.event_path("process.pid").and_then(Value::as_i64) {
            p.insert("pid".into(), json!(v));
        }
        if let Some(v) = alert.event_str("process.comm") {
            p.insert("name".into(), json!(v));
        }
        if let Some(v) = alert.event_str("process.exe") {
            p.insert("file".into(), json!({"path": v, "type_id": 1}));
        }
        if let Some(v) = alert.event_str("process.args") {
            p.insert("cmd_line".into(), json!(v));
        }
        ev.insert("process".into(), Value::Object(p));
        if let Some(c) = alert.event_str("process.container_id") {
            ev.insert("container".into(), json!({"uid": c}));
        }
    }
    if let Some(f) = alert.event_str("file.path") {
        ev.insert("file".into(), json!({"path": f, "type_id": 1}));
    }
    if let Some(d) = alert.event_str("net.daddr") {
        let mut ep = json!({"ip": d});
        if let Some(p) = alert.event_path("net.dport").and_then(Value::as_u64) {
            ep["port"] = json!(p);
        }
        ev.insert("dst_endpoint".into(), ep);
    }
    if !ev.is_empty() {
        o["evidences"] = json!([Value::Object(ev)]);
    }
    o
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- Slack

pub const SLACK_HEADER_MAX: usize = 150;
pub const SLACK_SECTION_MAX: usize = 3000;
pub const SLACK_FIELD_MAX: usize = 2000;
pub const SLACK_MAX_FIELDS: usize = 10;
pub const SLACK_MAX_BLOCKS: usize = 50;

pub fn slack_style(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Critical => (":red_circle:", "#d00000"),
        Severity::High => (":large_orange_circle:", "#f26b1d"),
        Severity::Medium => (":large_yellow_circle:", "#f2c744"),
        Severity::Low => (":large_blue_circle:", "#2e86de"),
        Severity::Info => (":white_circle:", "#9e9e9e"),
    }
}

/// Escapes Slack's control characters (`&`, `<`, `>`) so untrusted text cannot
/// form mentions (`<!channel>`) or links, and cuts to `max` characters
/// (counted after escaping, never splitting an entity), ending with "…".
pub fn slack_text(s: &str, max: usize) -> String {
    let total: usize = s.chars().map(escaped_len).sum();
    let budget = if total <= max { usize::MAX } else { max.saturating_sub(1) };
    let mut out = String::with_capacity(s.len().min(max * 4));
    let mut used = 0;
    for c in s.chars() {
        let n = escaped_len(c);
        if used + n > budget {
            out.push('…');
            return out;
        }
        used += n;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn escaped_len(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    }
}

/// Untrusted value shown as inline code: no newlines or backticks, so it can
/// neither end the code span nor inject formatting.
fn slack_code(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{}`", slack_text(&flat, max.saturating_sub(2)))
}

/// Incoming-webhook payload: fallback `text` plus a coloured attachment whose
/// body is Block Kit (colour bars exist only on attachments).
pub fn slack_payload(alert: &Alert) -> Value {
    let (emoji, color) = slack_style(alert.severity);
    let title = if alert.title.is_empty() { &alert.rule } else { &alert.title };
    let flat_title: String = title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let header = slack_text(&format!("{emoji} {flat_title}"), SLACK_HEADER_MAX);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": header, "emoji": true}
    })];
    let message = if alert.message.is_empty() { "(no message)" } else { &alert.message };
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": slack_text(message, SLACK_SECTION_MAX)}
    }));

    let mut fields: Vec<(&str, String)> =
        vec![("Severity", alert.severity.as_str().to_string()), ("Rule", alert.rule.clone())];
    if !alert.host.is_empty() {
        fields.push(("Host", alert.host.clone()));
    }
    if let Some(c) = alert.event_str("process.container_id") {
        fields.push(("Container", c));
    }
    if let Some(p) = alert.event_str("process.exe").or_else(|| alert.event_str("process.comm")) {
        let pid = alert.event_str("process.pid").map(|p| format!(" (pid {p})")).unwrap_or_default();
        fields.push(("Process", format!("{p}{pid}")));
    }
    if let Some(a) = alert.event_str("process.args") {
        fields.push(("Command line", a));
    }
    if let Some(f) = alert.event_str("file.path") {
        fields.push(("File", f));
    }
    if let Some(d) = alert.event_str("net.daddr") {
        let port = alert.event_str("net.dport").map(|p| format!(":{p}")).unwrap_or_default();
        fields.push(("Destination", format!("{d}{port}")));
    }
    if !alert.mitre.is_empty() {
        fields.push(("MITRE ATT&CK", alert.mitre.join(", ")));
    }
    if alert.count > 1 {
        fields.push(("Occurrences", alert.count.to_string()));
    }
    fields.truncate(SLACK_MAX_FIELDS);
    let field_objs: Vec<Value> = fields
        .iter()
        .map(|(k, v)| {
            let label = format!("*{}*\n", slack_text(k, 100));
            let budget = SLACK_FIELD_MAX.saturating_sub(label.chars().count()).min(500);
            json!({"type": "mrkdwn", "text": format!("{label}{}", slack_code(v, budget))})
        })
        .collect();
    blocks.push(json!({"type": "section", "fields": field_objs}));

    let mut ctx = format!("{} | id {}", alert.ts.to_rfc3339_opts(SecondsFormat::Secs, true), alert.id);
    if let (Some(f), Some(l)) = (alert.first_seen, alert.last_seen) {
        ctx.push_str(&format!(
            " | {} occurrences {} to {}",
            alert.count,
            f.to_rfc3339_opts(SecondsFormat::Secs, true),
            l.to_rfc3339_opts(SecondsFormat::Secs, true)
        ));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": slack_text(&ctx, SLACK_SECTION_MAX)}]
    }));
    blocks.truncate(SLACK_MAX_BLOCKS);

    let fallback = slack_text(&format!("[{}] {}: {}", alert.severity, flat_title, alert.message), SLACK_SECTION_MAX);
    json!({
        "text": fallback,
        "attachments": [{"color": color, "blocks": blocks}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escaping_round_trips() {
        let mut a = Alert::new("r|1", Severity::High);
        a.message = "a=b\\c\nnext line".into();
        a.title = "pipe | title".into();
        let line = cef(&a);
        assert!(line.starts_with("CEF:0|sensor|sensor|"));
        assert!(line.contains("|r\\|1|pipe \\| title|8|"));
        let ext = line.split_once("|8|").unwrap().1;
        let kv = parse_cef_extension(ext);
        let msg = kv.iter().find(|(k, _)| k == "msg").unwrap();
        assert_eq!(msg.1, a.message);
    }

    #[test]
    fn slack_text_escapes_and_clips() {
        assert_eq!(slack_text("<!channel> & co", 100), "&lt;!channel&gt; &amp; co");
        let s = slack_text(&"<".repeat(1000), 10);
        assert!(s.chars().count() <= 10, "{s}");
        assert!(s.ends_with('…'));
        assert!(!s.contains("&l…"));
    }

    #[test]
    fn rfc5424_header_is_well_formed() {
        let mut a = Alert::new("rule with spaces", Severity::Critical);
        a.host = "host name".into();
        a.id = "x\"]".into();
        let m = rfc5424(10, "sensor", 7, &a, "hello");
        assert!(m.starts_with("<82>1 "), "{m}");
        assert!(m.contains(" hostname sensor 7 rulewithspaces [alert@32473 id=\"x\\\"\\]\""));
        assert!(m.ends_with("] hello"));
    }
}
