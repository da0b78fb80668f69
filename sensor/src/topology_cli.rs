//! `sensor topology`: the live service map of the running sensor, as a
//! table, JSON, Graphviz dot or a Mermaid flowchart.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Dot,
    Mermaid,
}

#[derive(Args, Debug)]
pub struct TopologyArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The running sensor's admin socket.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Read the newest snapshot from this audit database instead of the live sensor.
    #[arg(long, value_name = "PATH", conflicts_with = "socket")]
    pub db: Option<PathBuf>,
    /// With --db: the newest snapshot no older than this (e.g. 15m, 2h, 7d, or RFC 3339).
    #[arg(long, value_name = "WHEN", requires = "db")]
    pub since: Option<String>,
}

/// The newest `topology_snapshot` in an audit database.
fn from_db(db: &std::path::Path, since: Option<&str>) -> Result<serde_json::Value, String> {
    let reader = audit::AuditReader::open(db).map_err(|e| e.to_string())?;
    let mut filter = audit::QueryFilter { types: vec!["topology_snapshot".into()], ..Default::default() };
    if let Some(s) = since {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as i64;
        filter.since_ns = Some(audit::time::parse_time_spec(s, now).map_err(|e| e.to_string())?);
    }
    let newest = reader.query(&filter, 1).map_err(|e| e.to_string())?;
    let rec = newest.into_iter().next().ok_or_else(|| match since {
        Some(s) => format!("no topology snapshot since {s} in {}", db.display()),
        None => format!("no topology snapshot in {}", db.display()),
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&rec.json).map_err(|e| format!("corrupt snapshot record {}: {e}", rec.seq))?;
    eprintln!("snapshot of {} (record {})", v["ts"].as_str().unwrap_or("?"), rec.seq);
    Ok(v["topology"].clone())
}

fn seconds(v: &serde_json::Value) -> String {
    match v.as_f64() {
        Some(s) if s.is_finite() => format!("{:.1}ms", s * 1e3),
        Some(_) => ">2.5s".into(),
        None => "-".into(),
    }
}

fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Quotes for dot and Mermaid labels: no quote or newline can escape.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "'").replace('\n', " "))
}

pub fn render(topo: &serde_json::Value, format: Format) -> String {
    let empty = Vec::new();
    let edges = topo["edges"].as_array().unwrap_or(&empty);
    match format {
        Format::Json => serde_json::to_string_pretty(topo).unwrap_or_default() + "\n",
        Format::Table => {
            let mut rows = vec![[
                "CLIENT".to_string(),
                "SERVER".into(),
                "CONNS".into(),
                "FAILED".into(),
                "SENT".into(),
                "RECEIVED".into(),
                "CONNECT p50".into(),
                "REQS".into(),
                "REQ FAILED".into(),
                "REQ p50".into(),
                "REQ p99".into(),
            ]];
            for e in edges {
                rows.push([
                    e["client"].as_str().unwrap_or("").to_string(),
                    e["server"].as_str().unwrap_or("").to_string(),
                    num(&e["connections"]).to_string(),
                    num(&e["failed"]).to_string(),
                    num(&e["bytes_sent"]).to_string(),
                    num(&e["bytes_received"]).to_string(),
                    seconds(&e["connect_p50_seconds"]),
                    num(&e["requests"]).to_string(),
                    num(&e["requests_failed"]).to_string(),
                    seconds(&e["request_p50_seconds"]),
                    seconds(&e["request_p99_seconds"]),
                ]);
            }
            let mut widths = [0usize; 10];
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count().min(48));
                }
            }
            let mut out = String::new();
            for r in &rows {
                let cells: Vec<String> = r
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{:<w$}", c.chars().take(48).collect::<String>()))
                    .collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
            out
        }
        Format::Dot => {
            let mut out = String::from("digraph topology {\n  rankdir=LR;\n");
            for e in edges {
                let (c, s) = (e["client"].as_str().unwrap_or(""), e["server"].as_str().unwrap_or(""));
                out.push_str(&format!(
                    "  {} -> {} [label=\"{} conns, {} failed\"];\n",
                    quoted(c),
                    quoted(s),
                    num(&e["connections"]),
                    num(&e["failed"])
                ));
            }
            out.push_str("}\n");
            out
        }
        Format::Mermaid => {
            let mut out = String::from("flowchart LR\n");
            let mut ids: Vec<String> = Vec::new();
            let mut id = |name: &str, out: &mut String| -> String {
                match ids.iter().position(|n| n == name) {
                    Some(i) => format!("n{i}"),
                    None => {
                        ids.push(name.to_string());
                        let i = ids.len() - 1;
                        out.push_str(&format!("  n{i}[{}]\n", quoted(name)));
                        format!("n{i}")
                    }
                }
            };
            for e in edges {
                let c = id(e["client"].as_str().unwrap_or(""), &mut out);
                let s = id(e["server"].as_str().unwrap_or(""), &mut out);
                out.push_str(&format!(
                    "  {c} -->|{} conns, {} failed| {s}\n",
                    num(&e["connections"]),
                    num(&e["failed"])
                ));
            }
            out
        }
    }
}

pub fn run(args: TopologyArgs) -> std::process::ExitCode {
    let topo = match &args.db {
        Some(db) => from_db(db, args.since.as_deref()),
        None => {
            crate::admin::request(&crate::admin::socket_path(&args.socket), "topology").map(|v| v["topology"].clone())
        }
    };
    match topo {
        Ok(t) => {
            print!("{}", render(&t, args.format));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sensor topology: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({"edges": [
            {"client": "curl", "server": "python3:8080", "connections": 5, "failed": 0,
             "bytes_sent": 400, "bytes_received": 9000, "connect_p50_seconds": 0.0005, "connect_p99_seconds": null},
            {"client": "evil\"x", "server": "10.0.0.2:81", "connections": 1, "failed": 1,
             "bytes_sent": 0, "bytes_received": 0, "connect_p50_seconds": null, "connect_p99_seconds": null},
        ]})
    }

    #[test]
    fn every_format_names_both_ends() {
        let t = render(&sample(), Format::Table);
        assert!(t.starts_with("CLIENT"), "{t}");
        assert!(
            t.lines().nth(1).unwrap().split_whitespace().collect::<Vec<_>>()[..4] == ["curl", "python3:8080", "5", "0"]
        );
        assert!(t.contains("0.5ms"));
        let d = render(&sample(), Format::Dot);
        assert!(d.contains("\"curl\" -> \"python3:8080\" [label=\"5 conns, 0 failed\"];"), "{d}");
        assert!(d.contains("\"evil'x\""), "a quote cannot break out: {d}");
        let m = render(&sample(), Format::Mermaid);
        assert!(m.contains("n0[\"curl\"]") && m.contains("n0 -->|5 conns, 0 failed| n1"), "{m}");
        let j: serde_json::Value = serde_json::from_str(&render(&sample(), Format::Json)).unwrap();
        assert_eq!(j, sample());
    }
}
