//! `make bench`: workload storms with and without the sensor, in the same
//! run, alternating, reporting medians. Prints a table:
//! events/s delivered to user space, events lost, workload slowdown.
//!
//! Storms: open+close of one file, exec of /bin/true, TCP connect+close to a
//! loopback listener, HTTP/1.1 keep-alive requests to a local nginx (the L7
//! capture path). Sizes can be scaled with BENCH_SCALE (default 1.0).

use sensor_e2e::{Sensor, sensor_bin, unique};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Workload {
    name: &'static str,
    event_type: &'static str,
    ops: u64,
    run: fn(&Path, u64),
}

fn open_storm(dir: &Path, n: u64) {
    let f = dir.join("storm-file");
    std::fs::write(&f, b"x").unwrap();
    for _ in 0..n {
        drop(std::fs::File::open(&f).unwrap());
    }
}

fn exec_storm(_: &Path, n: u64) {
    for _ in 0..n {
        let st = Command::new("/bin/true").status().unwrap();
        assert!(st.success());
    }
}

/// Connect, accept, close in lockstep: a free-running client overflows the
/// listen backlog and then measures SYN retransmit timers, not the sensor.
fn connect_storm(_: &Path, n: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    for _ in 0..n {
        let c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        drop(c);
        drop(s);
    }
}

/// A local nginx serving a small page on loopback, for the HTTP storm.
struct Nginx {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = std::env::temp_dir().join(format!("sensor-bench-nginx-{}", unique()));
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/index.html"), "x".repeat(512)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.display();
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; keepalive_requests 1000000; client_body_temp_path {d}/t1; proxy_temp_path {d}/t2;\n\
               fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;\n\
               server {{ listen 127.0.0.1:{port}; root {d}/www; }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .spawn()
            .expect("nginx (installed by scripts/install-deps.sh)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, port, dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker (SIGKILL would orphan it)
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NGINX_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Sequential GETs on one keep-alive connection, each response read whole.
fn http_storm(_: &Path, n: u64) {
    use std::io::{BufRead, BufReader, Read, Write};
    let port = NGINX_PORT.load(std::sync::atomic::Ordering::Relaxed);
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut w = sock.try_clone().unwrap();
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    let mut body = vec![0u8; 4096];
    for i in 0..n {
        write!(w, "GET /index.html?i={i} HTTP/1.1\r\nHost: bench\r\n\r\n").unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        r.read_exact(&mut body[..len]).unwrap();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Row {
    name: &'static str,
    ops: u64,
    base_s: f64,
    with_s: f64,
    events_per_s: f64,
    delivered: u64,
    lost: u64,
    dropped: u64,
}

fn main() {
    assert!(sensor_e2e::is_root(), "the benchmark loads eBPF: run as root");
    let scale: f64 = std::env::var("BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let workloads = [
        Workload { name: "open+close storm", event_type: "open", ops: (1_000_000.0 * scale) as u64, run: open_storm },
        Workload { name: "exec storm", event_type: "exec", ops: (3_000.0 * scale) as u64, run: exec_storm },
        Workload { name: "connect storm", event_type: "connect", ops: (20_000.0 * scale) as u64, run: connect_storm },
        Workload { name: "http keep-alive", event_type: "l7", ops: (50_000.0 * scale) as u64, run: http_storm },
    ];
    let only_env = std::env::var("BENCH_ONLY").unwrap_or_default();
    let _nginx = (only_env.is_empty() || "http keep-alive".starts_with(&only_env)).then(|| {
        let n = Nginx::start();
        NGINX_PORT.store(n.port, std::sync::atomic::Ordering::Relaxed);
        n
    });
    let dir = std::env::temp_dir().join(format!("sensor-bench-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!("sensor binary: {}", sensor_bin().display());

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let mut rows = Vec::new();
    for w in workloads.iter().filter(|w| only.is_empty() || w.name.starts_with(&only)) {
        let (mut base, mut with, mut rate) = (Vec::new(), Vec::new(), Vec::new());
        let (mut delivered, mut lost, mut dropped) = (0, 0, 0);
        for round in 0..rounds {
            // alternate order so drift on a shared machine hits both sides
            let measure_base = |base: &mut Vec<f64>| {
                let t = Instant::now();
                (w.run)(&dir, w.ops);
                base.push(t.elapsed().as_secs_f64());
            };
            if round % 2 == 0 {
                measure_base(&mut base);
            }
            // the default configuration, events written to a file as in production
            let config =
                std::env::var("BENCH_CONFIG").unwrap_or_else(|_| "[pipeline]\nstats_interval_secs = 0\n".into());
            let sensor = Sensor::start(&config, &[]);
            let t = Instant::now();
            (w.run)(&dir, w.ops);
            let secs = t.elapsed().as_secs_f64();
            std::thread::sleep(Duration::from_millis(300));
            let (_, stderr) = sensor.stop_with(libc::SIGTERM);
            let line = stderr.lines().find(|l| l.starts_with("sensor stats: ")).expect("stats");
            let stats: serde_json::Value = serde_json::from_str(&line["sensor stats: ".len()..]).unwrap();
            let d = stats["read_by_type"][w.event_type].as_u64().unwrap_or(0);
            delivered = d;
            lost = stats["kernel_lost"].as_u64().unwrap_or(0);
            dropped = stats["queue_dropped"].as_u64().unwrap_or(0);
            with.push(secs);
            rate.push(d as f64 / secs);
            if round % 2 == 1 {
                measure_base(&mut base);
            }
            let _ = std::fs::remove_dir_all(&sensor.dir);
        }
        rows.push(Row {
            name: w.name,
            ops: w.ops,
            base_s: median(base),
            with_s: median(with),
            events_per_s: median(rate),
            delivered,
            lost,
            dropped,
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("\nsensor benchmark: {rounds} rounds, medians; {cpus} CPUs, kernel {}", kernel.trim());
    println!(
        "{:<18} {:>9} {:>10} {:>10} {:>9} {:>13} {:>11} {:>8} {:>8}",
        "workload", "ops", "base s", "sensor s", "slowdown", "events/s", "delivered*", "lost*", "dropped*"
    );
    for r in &rows {
        println!(
            "{:<18} {:>9} {:>10.3} {:>10.3} {:>8.1}% {:>13.0} {:>11} {:>8} {:>8}",
            r.name,
            r.ops,
            r.base_s,
            r.with_s,
            (r.with_s / r.base_s - 1.0) * 100.0,
            r.events_per_s,
            r.delivered,
            r.lost,
            r.dropped
        );
    }
    println!("* last round: events of the storm's type read from the ring buffer; lost in the kernel and");
    println!("  dropped at the pipeline queue count all types (the whole host was being watched).");
}
