//! Memory of the detector under a large topology: 10k services, 100k edges,
//! exec lineages, with the default caps and with tighter ones. Prints a
//! table: services kept, evictions, entries, live heap bytes (a counting allocator) and the
//! persisted size. `cargo bench -p anomaly`.

use anomaly::{AnomalyConfig, Detector, Input};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes: the detector's own memory, not the allocator's.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn run(label: &str, cfg: AnomalyConfig) {
    let before = LIVE.load(Ordering::Relaxed);
    let mut d = Detector::new(cfg);
    let mut out = Vec::new();
    let names: Vec<String> = (0..10_000).map(|i| format!("service-{i:05}:8080")).collect();
    let exes: Vec<String> = (0..64).map(|i| format!("/usr/bin/tool-{i}")).collect();
    let mut t = 1_000u64;
    for e in 0..100_000usize {
        let client = &names[e % 10_000];
        let server = &names[(e * 7919 + e / 10_000) % 10_000];
        d.observe(&Input::Connection { client, server, client_local: true, server_local: true }, t, &mut out);
        let req = Input::Request {
            client,
            server,
            protocol: "http",
            failed: e % 97 == 0,
            latency_ns: 3_000_000 + (e as u64 % 13) * 100_000,
        };
        d.observe(&req, t, &mut out);
        if e % 4 == 0 {
            let exe = &exes[e % 64];
            d.observe(&Input::Exec { service: client, parent_exe: Some("/bin/sh"), exe }, t, &mut out);
        }
        t += 10;
        out.clear();
    }
    let grown = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let s = d.stats();
    let (mut peers, mut lineages) = (0usize, 0usize);
    for (_, svc) in d.services() {
        peers += svc.outbound.len() + svc.inbound.len();
        lineages += svc.lineage.len() + svc.executables.len();
    }
    let persisted: usize = d.take_dirty().iter().map(|(n, _, j)| n.len() + j.len()).sum();
    println!(
        "| {label} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
        s.services,
        s.services_evicted,
        peers,
        s.peers_evicted,
        lineages,
        grown as f64 / (1024.0 * 1024.0),
        persisted as f64 / (1024.0 * 1024.0)
    );
}

fn main() {
    println!(
        "| caps | services kept | services evicted | peer entries | peers evicted | lineage+exe entries | heap MiB (live, after) | persisted MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    run("defaults (4096 services, 256 peers)", AnomalyConfig::default());
    run(
        "10000 services, 256 peers (no service eviction)",
        AnomalyConfig { max_services: 10_000, ..AnomalyConfig::default() },
    );
    run("1000 services, 32 peers", AnomalyConfig { max_services: 1000, max_peers: 32, ..AnomalyConfig::default() });
}
