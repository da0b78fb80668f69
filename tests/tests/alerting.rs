//! Alerts from the running sensor reach a real webhook receiver on
//! loopback, signed and with a stable idempotency key, through the outbox.

use sensor_e2e::{Sensor, s};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

struct Request {
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

/// A minimal HTTP/1.1 receiver: one request per connection, answers 200.
fn webhook_server() -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || !line.starts_with("POST /hook") {
                continue;
            }
            let mut headers = Vec::new();
            let mut len = 0usize;
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                    headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap();
            let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            if tx.send(Request { headers, body }).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn a_rule_alert_is_delivered_to_a_webhook() {
    let (url, requests) = webhook_server();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[kernel.file_filter]\nwatch_prefixes = [\"/etc/shadow\"]\nwatch_only = true\n\
         [alerting]\noutbox = \"{}\"\n\
         [[alerting.sinks]]\ntype = \"webhook\"\nname = \"test-hook\"\nurl = \"{url}\"\nmin_severity = \"medium\"\n",
        dir.path().join("outbox.db").display()
    );
    let sensor = Sensor::start(&config, &[]);
    Command::new("/usr/bin/cat").arg("/etc/shadow").output().unwrap();
    let req = loop {
        let r = requests.recv_timeout(Duration::from_secs(20)).expect("no webhook request within 20 s");
        if r.body["rule"] == "read_shadow" {
            break r;
        }
    };
    assert_eq!(s(&req.body, &["severity"]), "high");
    assert_eq!(s(&req.body, &["event", "process", "exe"]), "/usr/bin/cat");
    let key = req.headers.iter().find(|(k, _)| k == "idempotency-key").map(|(_, v)| v.clone());
    assert!(key.as_deref().is_some_and(|k| !k.is_empty()), "headers: {:?}", req.headers);
    assert_eq!(Some(s(&req.body, &["id"]).to_string()), key, "body id is the idempotency key");

    let (status, stderr) = sensor.stop_with(libc::SIGTERM);
    assert!(status.success(), "{stderr}");
    // the outbox records the delivery
    let out = Command::new(sensor_e2e::sensor_bin())
        .args(["alerts", "list", "--outbox", dir.path().join("outbox.db").to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("read_shadow"));
}
