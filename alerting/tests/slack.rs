//! Slack payloads received by a real HTTP server, checked against Block
//! Kit's structure and limits, with long and hostile strings.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerting::{Alerter, AlertingConfig, DedupConfig, Severity, SinkConfig, SinkType};
use common::*;
use serde_json::Value;

fn chars(v: &Value) -> usize {
    v.as_str().expect("text is a string").chars().count()
}

/// Block Kit structural check (blocks inside a coloured attachment).
fn check_block_kit(p: &Value) -> Result<(), String> {
    let text = p["text"].as_str().ok_or("top-level fallback text missing")?;
    if text.chars().count() > 40_000 {
        return Err("fallback text too long".into());
    }
    let att = p["attachments"].as_array().ok_or("attachments missing")?;
    for a in att {
        let color = a["color"].as_str().ok_or("color missing")?;
        if !(color.starts_with('#') && color.len() == 7) {
            return Err(format!("bad color {color}"));
        }
        let blocks = a["blocks"].as_array().ok_or("blocks missing")?;
        if blocks.is_empty() || blocks.len() > 50 {
            return Err(format!("{} blocks", blocks.len()));
        }
        for b in blocks {
            match b["type"].as_str().ok_or("block without type")? {
                "header" => {
                    if b["text"]["type"] != "plain_text" {
                        return Err("header text must be plain_text".into());
                    }
                    if chars(&b["text"]["text"]) > 150 {
                        return Err("header > 150".into());
                    }
                }
                "section" => {
                    let has_text = b.get("text").is_some();
                    let fields = b.get("fields").and_then(Value::as_array);
                    if !has_text && fields.is_none() {
                        return Err("section needs text or fields".into());
                    }
                    if has_text {
                        if !matches!(b["text"]["type"].as_str(), Some("mrkdwn" | "plain_text")) {
                            return Err("section text type".into());
                        }
                        let n = chars(&b["text"]["text"]);
                        if n == 0 || n > 3000 {
                            return Err(format!("section text {n} chars"));
                        }
                    }
                    if let Some(f) = fields {
                        if f.is_empty() || f.len() > 10 {
                            return Err(format!("{} fields", f.len()));
                        }
                        for x in f {
                            if chars(&x["text"]) > 2000 {
                                return Err("field > 2000".into());
                            }
                        }
                    }
                }
                "context" => {
                    let e = b["elements"].as_array().ok_or("context elements")?;
                    if e.is_empty() || e.len() > 10 {
                        return Err("context elements count".into());
                    }
                    for x in e {
                        if chars(&x["text"]) > 3000 {
                            return Err("context text > 3000".into());
                        }
                    }
                }
                "divider" => {}
                other => return Err(format!("unexpected block type {other}")),
            }
        }
    }
    Ok(())
}

/// Every text node in the payload.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "text"
                    && let Some(s) = x.as_str()
                {
                    out.push(s.to_string());
                }
                texts(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_block_kit_structure_with_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let srv = HttpServer::start(scripted(vec![], log.clone())).await;
    let alerter = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: DedupConfig { window: Duration::ZERO, ..Default::default() },
        sinks: vec![SinkConfig {
            kind: SinkType::Slack,
            name: "slack".into(),
            url: Some(srv.url("/services/T0/B0/XYZ")),
            ..Default::default()
        }],
        ..Default::default()
    })
    .unwrap();

    let mut cases = Vec::new();
    let mut a = sample("exec_shell", Severity::Critical, "/bin/bash");
    a.title = format!("<!channel> *bold* _it_ `code` {} 🚨", "T".repeat(400));
    a.message = format!(
        "<!here> <https://evil.example|click me> & co\n```\n{}\n```\n*{}* 😀🔥",
        "A".repeat(4096),
        "ü".repeat(1000)
    );
    a.host = "host\nwith\nnewlines <@U123>".into();
    a.event["process"]["args"] = serde_json::json!(["sh", "-c", "echo `id` > /tmp/x && curl <http://x>"]);
    a.event["process"]["exe"] = serde_json::json!("/tmp/`evil`\n*bin*".repeat(300));
    a.mitre = (0..40).map(|i| format!("T{i:04}")).collect();
    a.count = 7;
    cases.push(a);
    let mut b = sample("quiet", Severity::Info, "/bin/true");
    b.title = String::new();
    b.message = String::new();
    b.event = serde_json::json!({"net": {"daddr": "1.2.3.4", "dport": 443}, "file": {"path": "/etc/passwd"}});
    cases.push(b);
    let mut c = sample("amp", Severity::Medium, "/x");
    c.message = "&".repeat(5000);
    cases.push(c);
    for c in &cases {
        alerter.submit(c.clone()).unwrap();
    }
    assert!(wait_until(Duration::from_secs(5), || log.lock().unwrap().len() == cases.len()).await);

    for (req, _) in log.lock().unwrap().iter() {
        assert_eq!(req.path, "/services/T0/B0/XYZ");
        let p = req.json();
        check_block_kit(&p).unwrap_or_else(|e| panic!("{e}: {p:#}"));
        let mut all = Vec::new();
        texts(&p, &mut all);
        for t in &all {
            // No raw control sequences: mentions and links are escaped.
            assert!(!t.contains('<') && !t.contains('>'), "unescaped: {t}");
            // Escaping was not cut in half by truncation.
            let amp_ok = t.match_indices('&').all(|(i, _)| {
                let r = &t[i..];
                r.starts_with("&amp;") || r.starts_with("&lt;") || r.starts_with("&gt;")
            });
            assert!(amp_ok, "broken entity in {t}");
        }
        let blocks = &p["attachments"][0]["blocks"];
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        let body = req.json().to_string();
        if body.contains("exec_shell") {
            assert_eq!(p["attachments"][0]["color"], "#d00000");
            assert!(header.starts_with(":red_circle: "), "{header}");
            assert!(header.ends_with('…'));
            // Process/host values are inline code on one line.
            let fields = blocks[2]["fields"].as_array().unwrap();
            let process = fields.iter().find(|f| f["text"].as_str().unwrap().starts_with("*Process*")).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string();
            let value = process.split_once('\n').unwrap().1;
            assert!(value.starts_with('`') && value.ends_with('`'));
            assert_eq!(value.matches('`').count(), 2, "{value}");
            assert!(!value.contains('\n'));
            assert!(fields.iter().any(|f| f["text"].as_str().unwrap().contains("Occurrences")));
        }
        if body.contains("quiet") {
            assert!(header.contains("quiet"));
            let f = blocks[2]["fields"].to_string();
            assert!(f.contains("1.2.3.4:443") && f.contains("/etc/passwd"), "{f}");
        }
    }
    alerter.shutdown(Duration::from_secs(1)).await;
}
