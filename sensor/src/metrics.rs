//! Prometheus exposition of the sensor's own health: events read and lost by
//! type, queue drops, policy, audit and alerting counters.
//!
//! The main loop publishes a stats snapshot (the same JSON `sensor stats`
//! logs) about once a second; the HTTP side only renders the latest one, so
//! a slow or hostile scraper never touches the hot path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The latest stats snapshot, shared between the main loop and the server,
/// and the topology's (published by the pipeline thread).
#[derive(Clone, Default)]
pub struct Snapshot(Arc<Mutex<serde_json::Value>>, pub crate::topo::TopologySlot);

impl Snapshot {
    pub fn new(topology: crate::topo::TopologySlot) -> Self {
        Snapshot(Default::default(), topology)
    }

    pub fn publish(&self, stats: serde_json::Value) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = stats;
    }

    fn get(&self) -> serde_json::Value {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `--metrics-addr`: `HOST:PORT`, or `:PORT` for loopback. Only an explicit
/// host exposes the endpoint beyond this machine.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') { format!("127.0.0.1{s}") } else { s.to_string() };
    full.parse().map_err(|_| format!("invalid metrics address {s:?}: expected HOST:PORT or :PORT"))
}

/// Top-level counters of the stats JSON: (key, metric, type, help).
const SCALARS: &[(&str, &str, &str, &str)] = &[
    ("events_read", "sensor_events_read_total", "counter", "Records read from the kernel ring buffers."),
    ("kernel_lost", "sensor_kernel_lost_total", "counter", "Records the kernel dropped (ring buffer full)."),
    ("queue_dropped", "sensor_queue_dropped_total", "counter", "Events dropped because the pipeline queue was full."),
    ("decode_errors", "sensor_decode_errors_total", "counter", "Ring-buffer records that failed to decode."),
    ("processed", "sensor_events_processed_total", "counter", "Events through the pipeline."),
    ("synthetic", "sensor_synthetic_events_total", "counter", "Events the sensor made itself (health, reloads)."),
    ("alerts", "sensor_alerts_total", "counter", "Alerts raised by the rules."),
    ("output_errors", "sensor_output_errors_total", "counter", "Failed writes to --events-out."),
    ("queue_depth", "sensor_pipeline_queue_depth", "gauge", "Events waiting between reader and pipeline."),
];

/// Per-type objects of the stats JSON, exported with a `type` label.
const BY_TYPE: &[(&str, &str, &str)] = &[
    ("read_by_type", "sensor_events_read_by_type_total", "Records read, by event type."),
    ("kernel_lost_by_type", "sensor_kernel_lost_by_type_total", "Records the kernel dropped, by event type."),
    ("queue_dropped_by_type", "sensor_queue_dropped_by_type_total", "Events dropped at the queue, by event type."),
];

/// Sub-systems whose numeric counters are exported as `sensor_<section>_<key>`.
const SECTIONS: &[&str] = &["policy", "audit", "alerting", "anomaly"];

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Nested numbers of a section, flattened: `{"a": {"b": 1}}` -> `a_b 1`.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}_{}", sanitize(k)), v, out);
            }
        }
        other => {
            if let Some(n) = number(other) {
                out.push((prefix.to_string(), n));
            }
        }
    }
}

/// The Prometheus text format (version 0.0.4) of a stats snapshot.
pub fn render(stats: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (key, metric, kind, help) in SCALARS {
        if let Some(n) = stats.get(*key).and_then(number) {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}\n{metric} {n}");
        }
    }
    for (key, metric, help) in BY_TYPE {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        if let Some(m) = stats.get(*key).and_then(|v| v.as_object()) {
            for (ty, v) in m {
                if let Some(n) = number(v) {
                    let _ = writeln!(out, "{metric}{{type=\"{}\"}} {n}", escape_label(ty));
                }
            }
        }
    }
    for section in SECTIONS {
        let Some(v) = stats.get(*section) else { continue };
        let mut flat = Vec::new();
        flatten(&format!("sensor_{section}"), v, &mut flat);
        for (name, n) in flat {
            let _ = writeln!(out, "# TYPE {name} untyped\n{name} {n}");
        }
    }
    out
}

const MAX_REQUEST: usize = 8192;

/// Answers one HTTP/1.x request; anything but `GET /metrics` (or `/`) is
/// refused with a status naming why. Bounded in size and time.
async fn serve_one(mut sock: tokio::net::TcpStream, snapshot: Snapshot) {
    let mut buf = Vec::with_capacity(512);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return true;
            }
            if buf.len() >= MAX_REQUEST {
                return false;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let complete = tokio::time::timeout(Duration::from_secs(5), read).await.unwrap_or(false);
    let request_line = String::from_utf8_lossy(buf.split(|&b| b == b'\r').next().unwrap_or_default()).into_owned();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = if !complete || !parts.next().unwrap_or("").starts_with("HTTP/1.") {
        ("400 Bad Request", "text/plain", "malformed or oversized request\n".to_string())
    } else if method != "GET" && method != "HEAD" {
        ("405 Method Not Allowed", "text/plain", "only GET\n".to_string())
    } else {
        match target.split('?').next().unwrap_or("") {
            "/metrics" => {
                let mut text = render(&snapshot.get());
                if let Some(topo) = snapshot.1.get() {
                    topology::render(&topo, &mut text);
                }
                ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
            }
            "/" => ("200 OK", "text/plain", "sensor: metrics at /metrics\n".to_string()),
            _ => ("404 Not Found", "text/plain", "not found; metrics are at /metrics\n".to_string()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        sock.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            sock.write_all(body.as_bytes()).await?;
        }
        sock.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// Binds now (so a taken port is a start-up error) and serves in the background.
pub fn serve(rt: &tokio::runtime::Runtime, addr: SocketAddr, snapshot: Snapshot) -> Result<SocketAddr, String> {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    // at most this many scrapes at once; more wait in the accept backlog
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    rt.spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { continue };
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let snap = snapshot.clone();
            tokio::spawn(async move {
                serve_one(sock, snap).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_type_and_sections() {
        let stats = serde_json::json!({
            "events_read": 10, "kernel_lost": 2, "queue_depth": 3,
            "read_by_type": {"exec": 4, "open": 6},
            "kernel_lost_by_type": {"open": 2},
            "queue_dropped_by_type": {},
            "policy": {"evaluations": 7, "errors_by_rule": {"x-y": 1}, "name": "ignored"},
            "audit": {"degraded": false},
        });
        let text = render(&stats);
        assert!(text.contains("# TYPE sensor_events_read_total counter\nsensor_events_read_total 10\n"), "{text}");
        assert!(text.contains("sensor_pipeline_queue_depth 3\n"));
        assert!(text.contains("sensor_events_read_by_type_total{type=\"exec\"} 4\n"));
        assert!(text.contains("sensor_kernel_lost_by_type_total{type=\"open\"} 2\n"));
        assert!(text.contains("sensor_policy_evaluations 7\n"));
        assert!(text.contains("sensor_policy_errors_by_rule_x_y 1\n"));
        assert!(text.contains("sensor_audit_degraded 0\n"));
        assert!(!text.contains("ignored"));
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr(":9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_addr("0.0.0.0:1").unwrap(), "0.0.0.0:1".parse().unwrap());
        assert!(parse_addr("localhost").unwrap_err().contains("HOST:PORT"));
    }
}
