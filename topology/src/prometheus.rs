//! The topology as Prometheus series. Labels are service names, bounded by
//! the edge cap (`max_edges`): at most 2 x max_edges label pairs per metric.

use crate::graph::{LATENCY_BUCKETS, Snapshot};
use std::fmt::Write;

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
    let name = "sensor_topology_connect_seconds";
    let _ = writeln!(out, "# HELP {name} Connect latency (SYN sent to established).\n# TYPE {name} histogram");
    for e in &s.edges {
        let h = &e.stats.connect_latency;
        let l = format!("client=\"{}\",server=\"{}\"", label(&e.client), label(&e.server));
        for (bound, n) in LATENCY_BUCKETS.iter().zip(h.buckets) {
            let _ = writeln!(out, "{name}_bucket{{{l},le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{{l}}} {}\n{name}_count{{{l}}} {}", h.sum_seconds, h.count);
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
