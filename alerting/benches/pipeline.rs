//! Burst benchmark: 10k alerts/s for 10 s into three sinks (live webhook, live
//! TCP syslog, dead webhook), all on 127.0.0.1.
//!
//! `cargo bench -p alerting --bench pipeline` (env BENCH_RATE, BENCH_SECS to vary).
//! Prints submit latency, delivery latency at the receivers, peak RSS and
//! per-sink counters.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alerting::{
    Alerter, AlertingConfig, DedupConfig, RecordFormat, RetryConfig, Severity, SinkConfig, SinkType, SyslogTransport,
};
use common::*;

static BASE: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Default)]
struct Recv {
    /// Delivery latencies (ns) of non-aggregated alerts.
    lat: Mutex<Vec<u64>>,
    /// Sum of `count` over everything received (dedup-aware total).
    occurrences: AtomicU64,
    messages: AtomicU64,
    aggregated: AtomicU64,
}

impl Recv {
    fn record(&self, v: &serde_json::Value) {
        let t = now_ns();
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.occurrences.fetch_add(v["count"].as_u64().unwrap_or(1), Ordering::Relaxed);
        if v.get("first_seen").is_some() {
            self.aggregated.fetch_add(1, Ordering::Relaxed);
        } else if let Some(s) = v["event"]["bench_ns"].as_u64() {
            self.lat.lock().unwrap().push(t.saturating_sub(s));
        }
    }
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1e6
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
    let rate: u64 = std::env::var("BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run(rate, secs));
}

async fn run(rate: u64, secs: u64) {
    BASE.get_or_init(Instant::now);
    let dir = tempfile::tempdir().unwrap();

    let web = Arc::new(Recv::default());
    let w2 = web.clone();
    let srv = HttpServer::start(Arc::new(move |req: &Request| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
            w2.record(&v);
        }
        Reply::Status(200)
    }))
    .await;
    let sys = Arc::new(Recv::default());
    let s2 = sys.clone();
    let sys_addr = tcp_listener_with(Arc::new(move |m: String| {
        if let Ok(p) = parse_5424(&m)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&p.msg)
        {
            s2.record(&v);
        }
    }))
    .await;
    let dead = dead_port();

    let retry = RetryConfig {
        max_attempts: 1000,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    };
    let cfg = AlertingConfig {
        outbox: dir.path().join("outbox.db"),
        dedup: DedupConfig {
            window: Duration::from_secs(1),
            key: vec!["rule".into(), "event.process.exe".into()],
            max_keys: 50_000,
        },
        sinks: vec![
            SinkConfig {
                kind: SinkType::Webhook,
                name: "webhook-live".into(),
                url: Some(srv.url("/alerts")),
                concurrency: Some(8),
                retry,
                ..Default::default()
            },
            SinkConfig {
                kind: SinkType::Syslog,
                name: "syslog-tcp".into(),
                address: Some(sys_addr.to_string()),
                transport: Some(SyslogTransport::Tcp),
                format: Some(RecordFormat::Json),
                retry,
                ..Default::default()
            },
            SinkConfig {
                kind: SinkType::Webhook,
                name: "webhook-dead".into(),
                url: Some(format!("http://127.0.0.1:{dead}/alerts")),
                retry,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let alerter = Alerter::start(cfg).unwrap();
    let mut health = alerter.subscribe_health();
    let rss0 = rss_kib();
    let peak_rss = Arc::new(AtomicU64::new(rss0));
    let pr = peak_rss.clone();
    let sampler = tokio::spawn(async move {
        loop {
            pr.fetch_max(rss_kib(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    // Submit on a dedicated thread, paced every millisecond, like a policy
    // engine thread would.
    let total = rate * secs;
    let alerter = Arc::new(alerter);
    let a2 = alerter.clone();
    let submitter = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(total as usize);
        let mut refused = 0u64;
        let start = Instant::now();
        let per_ms = rate as f64 / 1000.0;
        let mut sent = 0u64;
        while sent < total {
            let due = ((start.elapsed().as_secs_f64() * 1000.0) * per_ms) as u64;
            while sent < due.min(total) {
                let i = sent;
                // 90% unique, 10% from 20 hot keys (aggregated by dedup).
                let exe = if i.is_multiple_of(10) {
                    format!("/usr/bin/hot{}", (i / 10) % 20)
                } else {
                    format!("/usr/bin/u{i}")
                };
                let mut a = sample("bench_rule", Severity::High, &exe);
                a.event["bench_ns"] = serde_json::json!(now_ns());
                let t = Instant::now();
                if a2.submit(a).is_err() {
                    refused += 1;
                }
                lat.push(t.elapsed().as_nanos() as u64);
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        (lat, refused, start.elapsed())
    });
    let (mut sub_lat, refused, took) = tokio::task::spawn_blocking(move || submitter.join().unwrap()).await.unwrap();

    // Wait for the live sinks to account for every occurrence (dedup windows
    // close 1 s after the last duplicate).
    let t_end = Instant::now();
    let done = wait_until(Duration::from_secs(30), || {
        web.occurrences.load(Ordering::Relaxed) >= total && sys.occurrences.load(Ordering::Relaxed) >= total
    })
    .await;
    let drain = t_end.elapsed();
    let stats = alerter.stats();
    sampler.abort();
    let mut degraded = Vec::new();
    while let Ok(ev) = health.try_recv() {
        degraded.push(ev);
    }

    println!("\n== alerting burst benchmark: {rate}/s for {secs} s ({total} alerts), 3 sinks, 2-core VM ==");
    println!(
        "submit loop took {:.2} s; refused at submit: {refused}; all live occurrences accounted: {done} (drain after burst {:.2} s)",
        took.as_secs_f64(),
        drain.as_secs_f64()
    );
    println!("\n{:<28} {:>10} {:>10} {:>10} {:>10}", "submit() latency", "p50 ms", "p99 ms", "p99.9 ms", "max ms");
    let (p50, p99, p999, max) =
        (pct(&mut sub_lat, 0.5), pct(&mut sub_lat, 0.99), pct(&mut sub_lat, 0.999), pct(&mut sub_lat, 1.0));
    println!("{:<28} {p50:>10.4} {p99:>10.4} {p999:>10.4} {max:>10.4}", "");
    println!(
        "\n{:<14} {:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "sink", "messages", "occurrences", "aggregated", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (name, r) in [("webhook-live", &web), ("syslog-tcp", &sys)] {
        let mut l = r.lat.lock().unwrap().clone();
        println!(
            "{:<14} {:>9} {:>11} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            r.messages.load(Ordering::Relaxed),
            r.occurrences.load(Ordering::Relaxed),
            r.aggregated.load(Ordering::Relaxed),
            pct(&mut l, 0.5),
            pct(&mut l, 0.99),
            pct(&mut l, 0.999),
            pct(&mut l, 1.0),
        );
    }
    println!(
        "\n{:<14} {:>9} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9}",
        "sink stats", "delivered", "retried", "dead", "queued", "overflow", "degraded", "backlog"
    );
    for s in &stats.sinks {
        println!(
            "{:<14} {:>9} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9}",
            s.name, s.delivered, s.retried, s.dead_lettered, s.queued, s.overflow, s.degraded, s.backlog
        );
    }
    println!(
        "\npipeline: submitted {} written {} deduplicated {} aggregated {} dropped {} outbox_failed {}",
        stats.submitted, stats.written, stats.deduplicated, stats.aggregated, stats.submit_dropped, stats.outbox_failed
    );
    println!(
        "RSS: start {} MiB, peak {} MiB; health events: {:?}",
        rss0 / 1024,
        peak_rss.load(Ordering::Relaxed) / 1024,
        degraded
    );
    let size = |n: &str| std::fs::metadata(dir.path().join(n)).map(|m| m.len()).unwrap_or(0) / (1024 * 1024);
    println!("outbox on disk: db {} MiB, wal {} MiB", size("outbox.db"), size("outbox.db-wal"));
    let alerter = Arc::try_unwrap(alerter).ok().expect("sole owner");
    let t = Instant::now();
    let rep = alerter.shutdown(Duration::from_secs(2)).await;
    println!(
        "shutdown took {:.2} s, left pending in outbox: {} (the dead sink's backlog)",
        t.elapsed().as_secs_f64(),
        rep.pending
    );
}
