//! Topology cost per connection (connect + accept + close of both ends,
//! joined) and the graph's size at its edge cap. Prints a table; medians of
//! 5 rounds. `cargo bench -p topology`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use topology::{CloseStats, Graph, Observation, Proc, TopologyConfig};

fn proc(pid: u32, exe: &str) -> Proc<'_> {
    Proc { pid, exe, container_id: None, systemd_unit: None, netns: None }
}

/// `n` connections between `services` client/server pairs; returns the time per connection.
fn round(n: u32, services: u32) -> Duration {
    let mut g = Graph::new(&TopologyConfig { max_edges: 10_000, ..TopologyConfig::default() });
    let exes: Vec<String> = (0..services * 2).map(|i| format!("/usr/bin/svc{i}")).collect();
    let t0 = Instant::now();
    let now = Instant::now();
    for i in 0..n {
        let pair = i % services;
        let client = proc(1000 + pair, &exes[(2 * pair) as usize]);
        let server = proc(5000 + pair, &exes[(2 * pair + 1) as usize]);
        let c = SocketAddr::from(([10, (pair >> 8) as u8, pair as u8, 1], 30000 + (i % 30000) as u16));
        let s = SocketAddr::from(([10, (pair >> 8) as u8, pair as u8, 2], 8080));
        let id = i as u64 * 2;
        g.observe(
            &Observation::Connect { proc: client, sock_id: id, local: c, remote: s, ok: true, latency_ns: 100_000 },
            now,
        );
        g.observe(&Observation::Accept { proc: server, sock_id: id + 1, local: s, remote: c }, now);
        let stats =
            CloseStats { bytes_sent: 100, bytes_received: 1000, duration_ns: 1000, srtt_us: 10, retransmits: 0 };
        g.observe(&Observation::Close { sock_id: id, outbound: true, stats }, now);
        g.observe(&Observation::Close { sock_id: id + 1, outbound: false, stats }, now);
        if i % 1024 == 0 {
            g.tick(now);
        }
    }
    let elapsed = t0.elapsed();
    std::hint::black_box(g.snapshot());
    elapsed / n
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    println!("{:<44} {:>12}", "case", "value");
    // memory at the cap (first, before other rounds grow the heap): 10k edges, 100k connections through them
    let before = rss_kib();
    let mut g = Graph::new(&TopologyConfig { max_edges: 10_000, ..TopologyConfig::default() });
    let now = Instant::now();
    for i in 0..100_000u32 {
        let e = i % 10_000;
        let exe = format!("/usr/bin/c{e}");
        let remote = SocketAddr::from(([192, 0, (e >> 8) as u8, e as u8], 443));
        g.observe(
            &Observation::Connect {
                proc: proc(e, &exe),
                sock_id: i as u64,
                local: SocketAddr::from(([10, 0, 0, 1], 1)),
                remote,
                ok: false,
                latency_ns: 1,
            },
            now,
        );
    }
    let snap = g.snapshot();
    println!(
        "{:<44} {:>9} KiB ({} edges)",
        "RSS growth at 10k edges",
        rss_kib().saturating_sub(before),
        snap.edges.len()
    );
    let mut text = String::new();
    topology::render(&snap, &mut text);
    println!(
        "{:<44} {:>9} KiB ({} lines)",
        "/metrics topology text at 10k edges",
        text.len() / 1024,
        text.lines().count()
    );
    for services in [10u32, 10_000] {
        let mut per: Vec<Duration> = (0..5).map(|_| round(200_000, services)).collect();
        per.sort();
        let ns = per[2].as_nanos();
        println!(
            "{:<44} {:>9} ns  ({:.2}M conns/s)",
            format!("per joined connection, {services} edges"),
            ns,
            1e3 / ns as f64
        );
    }
}
