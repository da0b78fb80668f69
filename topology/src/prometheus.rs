//! The topology as Prometheus series. Labels are service names, bounded by
//! the edge cap (`max_edges`): at most 2 x max_edges label pairs per metric.

use crate::graph::{Histogram, LATENCY_BUCKETS, Snapshot, merged_latency};
use std::fmt::Write;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}", h.sum_seconds, h.count);
}

/// Appends the topology series to `out` (Prometheus text format 0.0.4).
pub fn render(s: &Snapshot, out: &mut String) {
    type Counter = (&'static str, &'static str, fn(&crate::EdgeSnapshot) -> u64);
    let counters: [Counter; 6] = [
        ("sensor_topology_connections_total", "TCP connections from client to server service.", |e| e.connections),
        ("sensor_topology_connections_failed_total", "Connects that failed (refused, timed out).", |e| e.failed),
        ("sensor_topology_bytes_sent_total", "Bytes client to server, over closed connections.", |e| e.bytes_sent),
        ("sensor_topology_bytes_received_total", "Bytes server to client, over closed connections.", |e| {
            e.bytes_received
        }),
        ("sensor_topology_retransmits_total", "TCP segments retransmitted, over closed connections.", |e| {
            e.retransmits
        }),
        ("sensor_topology_connections_closed_total", "Connections closed.", |e| e.stats.closed),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for e in &s.edges {
            let _ =
                writeln!(out, "{name}{{client=\"{}\",server=\"{}\"}} {}", label(&e.client), label(&e.server), get(e));
        }
    }
    let name = "sensor_topology_srtt_seconds";
    let _ =
        writeln!(out, "# HELP {name} Mean smoothed TCP round-trip time of closed connections.\n# TYPE {name} gauge");
    for e in s.edges.iter().filter(|e| e.stats.closed > 0) {
        let mean = e.stats.srtt_us_sum as f64 / e.stats.closed as f64 / 1e6;
        let _ = writeln!(out, "{name}{{client=\"{}\",server=\"{}\"}} {mean}", label(&e.client), label(&e.server));
    }
    let name = "sensor_topology_connect_seconds";
    let _ = writeln!(out, "# HELP {name} Connect latency (SYN sent to established).\n# TYPE {name} histogram");
    for e in &s.edges {
        let l = format!("client=\"{}\",server=\"{}\"", label(&e.client), label(&e.server));
        histogram(out, name, &l, &e.stats.connect_latency);
    }
    // L7 requests per protocol, and Grafana Tempo's service-graph series
    // (a request is an L7 request; edges without L7 traffic have none)
    let name = "sensor_topology_requests_total";
    let failed = "sensor_topology_requests_failed_total";
    let mut failed_lines = String::new();
    let _ = writeln!(out, "# HELP {name} L7 requests by protocol.\n# TYPE {name} counter");
    for e in &s.edges {
        for (proto, r) in &e.stats.requests {
            let l = format!("client=\"{}\",server=\"{}\",protocol=\"{proto}\"", label(&e.client), label(&e.server));
            let _ = writeln!(out, "{name}{{{l}}} {}", r.requests);
            let _ = writeln!(failed_lines, "{failed}{{{l}}} {}", r.failed);
        }
    }
    let _ = write!(
        out,
        "# HELP {failed} Failed L7 requests (HTTP 5xx, RESP errors, PostgreSQL ErrorResponse).\n# TYPE {failed} counter\n{failed_lines}"
    );
    let total = "traces_service_graph_request_total";
    let failed = "traces_service_graph_request_failed_total";
    let seconds = "traces_service_graph_request_server_seconds";
    let with_requests: Vec<_> = s.edges.iter().filter(|e| e.requests > 0).collect();
    let _ = writeln!(
        out,
        "# HELP {total} Requests between services (Tempo service-graph convention).\n# TYPE {total} counter"
    );
    for e in &with_requests {
        let _ =
            writeln!(out, "{total}{{client=\"{}\",server=\"{}\"}} {}", label(&e.client), label(&e.server), e.requests);
    }
    let _ = writeln!(out, "# TYPE {failed} counter");
    for e in &with_requests {
        let _ = writeln!(
            out,
            "{failed}{{client=\"{}\",server=\"{}\"}} {}",
            label(&e.client),
            label(&e.server),
            e.requests_failed
        );
    }
    let _ = writeln!(
        out,
        "# HELP {seconds} Request latency: the server's time when it runs on this host, else the client's.\n# TYPE {seconds} histogram"
    );
    for e in &with_requests {
        let l = format!("client=\"{}\",server=\"{}\"", label(&e.client), label(&e.server));
        histogram(out, seconds, &l, &merged_latency(&e.stats));
    }
    let st = &s.stats;
    let _ = writeln!(
        out,
        "# TYPE sensor_topology_edges gauge\nsensor_topology_edges {}\n\
         # TYPE sensor_topology_edges_evicted_total counter\nsensor_topology_edges_evicted_total {}\n\
         # TYPE sensor_topology_unjoined_total counter\nsensor_topology_unjoined_total {}\n\
         # TYPE sensor_topology_pending_evicted_total counter\nsensor_topology_pending_evicted_total {}",
        st.edges, st.edges_evicted, st.unjoined, st.pending_evicted
    );
}
