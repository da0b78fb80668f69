//! Insert throughput, per-filter query latency, bytes per event and verify time.
//! Not run by `make test` (benches never are); run it by hand:
//!
//!   AUDIT_BENCH_ROWS=10000000 cargo bench -p audit --bench audit_bench
//!
//! AUDIT_BENCH_ROWS (default 1000000) sets the database size; AUDIT_BENCH_DB
//! keeps the database at that path (reused if it already has the rows, so
//! query latency can be re-measured without rebuilding); AUDIT_BENCH_VERIFY=0
//! skips the verify timing. Results for 10M rows are in audit/README.md.

use std::time::{Duration, Instant};

use std::borrow::Cow;

use audit::{
    AuditConfig, AuditReader, AuditStore, ByteSize, EventColumns, HumanDuration, QueryFilter, ReadOpens, Severity,
};
use serde::Serialize;
use serde_json::{Value, json};

const NEEDLES: u64 = 100;
const BASE_NS: i64 = 1_795_000_000_000_000_000;
const STEP_NS: i64 = 10_000; // 100k events/s of event time

fn ts(i: u64) -> String {
    audit::time::format_rfc3339_ns(BASE_NS + i as i64 * STEP_NS)
}

/// A pool event as the sensor holds it: typed, serialized once per event
/// (the pipeline serializes its typed event the same way, see
/// `AuditStore::record_event_with`).
#[derive(Serialize, Clone)]
struct BenchEvent {
    ts: String,
    host: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    process: BenchProcess,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<BenchFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<BenchNet>,
}

#[derive(Serialize, Clone)]
struct BenchProcess {
    pid: u64,
    tid: u64,
    ppid: u64,
    uid: u64,
    euid: u64,
    gid: u64,
    egid: u64,
    comm: String,
    exe: String,
    args: Vec<String>,
    cwd: &'static str,
    container_id: Option<String>,
}

#[derive(Serialize, Clone)]
struct BenchFile {
    path: String,
    flags: Vec<&'static str>,
    mode: u32,
    result: i64,
}

#[derive(Serialize, Clone)]
struct BenchNet {
    proto: &'static str,
    family: &'static str,
    saddr: &'static str,
    sport: u64,
    daddr: String,
    dport: u64,
    direction: &'static str,
}

impl BenchEvent {
    /// The indexed columns, read from the typed fields (no JSON lookups).
    fn columns(&self, ts_ns: i64) -> EventColumns<'_> {
        EventColumns {
            ts_ns: Some(ts_ns),
            typ: Some(self.typ),
            pid: Some(self.process.pid as i64),
            uid: Some(self.process.uid as i64),
            exe: Some(&self.process.exe),
            container: self.process.container_id.as_deref(),
            path: self.file.as_ref().map(|f| f.path.as_str()),
            daddr: self.net.as_ref().map(|n| Cow::Borrowed(n.daddr.as_str())),
            dport: self.net.as_ref().map(|n| n.dport as i64),
            read_only_open: self.typ == "open"
                && self.file.as_ref().is_some_and(|f| f.flags.iter().all(|f| *f == "O_RDONLY")),
        }
    }
}

fn typed_event(k: u64) -> BenchEvent {
    let pid = 1000 + (k * 7919) % 30_000;
    let exe = format!("/usr/bin/tool{}", k % 200);
    let process = BenchProcess {
        pid,
        tid: pid,
        ppid: 1,
        uid: k % 50,
        euid: k % 50,
        gid: 0,
        egid: 0,
        comm: format!("tool{}", k % 200),
        exe: exe.clone(),
        args: vec![exe, "--flag".into(), format!("arg{}", k % 1000)],
        cwd: "/home/user",
        container_id: k.is_multiple_of(3).then(|| format!("c0ffee{:058x}", k % 50)),
    };
    let typ = match k % 100 {
        0..=9 => "exec",
        10..=54 => "open",
        55..=69 => "connect",
        70..=79 => "close",
        80..=81 => "unlink",
        82..=83 => "rename",
        84 => "chmod",
        85..=89 => "dns",
        90..=94 => "fork",
        _ => "exit",
    };
    let file = matches!(typ, "open" | "unlink" | "rename" | "chmod").then(|| BenchFile {
        path: format!("/var/lib/app/data/file{}.db", k % 100_000),
        flags: vec!["O_RDONLY"],
        mode: 0,
        result: 3,
    });
    let net = matches!(typ, "connect" | "close" | "dns").then(|| BenchNet {
        proto: "tcp",
        family: "ipv4",
        saddr: "10.0.0.5",
        sport: 40000 + k % 20000,
        daddr: format!("10.1.{}.{}", (k / 256) % 20, k % 256),
        dport: [80, 443, 5432, 6379, 53][(k % 5) as usize],
        direction: "outbound",
    });
    BenchEvent { ts: String::new(), host: "bench-host", typ, process, file, net }
}

fn pool_event(k: u64) -> Value {
    serde_json::to_value(typed_event(k)).expect("bench event serializes")
}

fn alert_of(ev: &Value, k: u64) -> Value {
    json!({"type": "alert", "ts": ev["ts"], "host": "bench-host", "rule": format!("rule_{}", k % 20),
        "severity": (["info", "low", "medium", "high"])[(k % 4) as usize], "title": "Something suspicious",
        "message": "a process did something", "mitre": ["T1003"], "event": ev})
}

/// The needle kinds: each gets exactly NEEDLES rows with a unique value.
const KINDS: [&str; 10] = ["pid", "uid", "exe", "container", "path", "addr", "port", "rule", "severity", "type"];

fn needle(kind: &str, i: u64) -> (Value, bool) {
    let mut ev = pool_event(i);
    ev["type"] = json!("open");
    ev["file"] = json!({"path": "/tmp/x", "flags": ["O_RDONLY"], "mode": 0, "result": 3});
    let mut alert = false;
    match kind {
        "pid" => ev["process"]["pid"] = json!(4_000_000),
        "uid" => ev["process"]["uid"] = json!(77_777),
        "exe" => ev["process"]["exe"] = json!("/opt/needle/bin/needle"),
        "container" => ev["process"]["container_id"] = json!("feedface0123456789"),
        "path" => ev["file"]["path"] = json!("/srv/needle/secret.key"),
        "addr" | "port" => {
            ev["type"] = json!("connect");
            ev.as_object_mut().unwrap().remove("file");
            let (a, p) = if kind == "addr" { ("203.0.113.77", 443) } else { ("10.9.9.9", 31337) };
            ev["net"] = json!({"proto": "tcp", "family": "ipv4", "saddr": "10.0.0.5", "sport": 5555, "daddr": a, "dport": p, "direction": "outbound"});
        }
        "rule" | "severity" => alert = true,
        "type" => ev["type"] = json!("ptrace"),
        _ => unreachable!(),
    }
    (ev, alert)
}

/// CPU seconds (user + system) used so far by the whole process.
fn process_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU seconds used by the thread named `name` (from /proc/self/task/*/stat).
fn thread_cpu(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ
    let mut total = 0.0;
    for t in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let Some((comm, rest)) = stat.split_once(") ") else { continue };
        if !comm.ends_with(&format!("({name}")) {
            continue;
        }
        let f: Vec<&str> = rest.split(' ').collect();
        // After "comm) ": state is field 0, utime 11, stime 12.
        total += (f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0)) / tick;
    }
    total
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rows: u64 = std::env::var("AUDIT_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let path =
        std::env::var("AUDIT_BENCH_DB").map(std::path::PathBuf::from).unwrap_or_else(|_| tmp.path().join("bench.db"));
    let existing = AuditReader::open(&path).ok().and_then(|r| r.last_seq().ok()).unwrap_or(0);
    println!("audit bench: {rows} rows, db {}", path.display());

    if existing < rows {
        let _ = std::fs::remove_file(&path);
        let cfg = AuditConfig {
            path: path.clone(),
            max_age: HumanDuration(Duration::ZERO),
            max_bytes: ByteSize(0),
            skip_path_prefixes: vec![],
            // The bench's opens are read-only: keep them all (the default keeps only sensitive ones).
            read_opens: ReadOpens::All,
            checkpoint_every: 1_000_000,
            batch_rows: std::env::var("AUDIT_BENCH_BATCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(AuditConfig::default().batch_rows),
            ..Default::default()
        };
        let store = AuditStore::open(&cfg).expect("open");
        // AUDIT_BENCH_INPUT=value measures the generic path (events as JSON
        // values: column lookups and serialization inside the store) instead
        // of the sensor's (typed events, columns read from the fields).
        let value_input = std::env::var("AUDIT_BENCH_INPUT").is_ok_and(|v| v == "value");
        println!(
            "input: {}",
            if value_input { "JSON values (record_event)" } else { "typed events (record_event_with)" }
        );
        let mut pool: Vec<BenchEvent> = (0..10_007).map(typed_event).collect();
        let mut pool_values: Vec<Value> =
            if value_input { pool.iter().map(|e| serde_json::to_value(e).expect("value")).collect() } else { vec![] };
        let stride = rows / (NEEDLES + 1);
        let t0 = Instant::now();
        let cpu0 = process_cpu();
        let mut tchunk = t0;
        let chunk = (rows / 10).clamp(100_000, 1_000_000);
        let mut rates: Vec<f64> = Vec::new();
        let mut writer_cpu: f64 = 0.0;
        let mut retries: u64 = 0;
        let mut alerts_sent = 0u64;
        for i in 0..rows {
            // Needles of kind k sit at rows (j+1)*stride + k + 1 for j < NEEDLES.
            let off = i % stride.max(1);
            let is_needle =
                stride > 20 && i >= stride && i / stride <= NEEDLES && (1..=KINDS.len() as u64).contains(&off);
            let k = (i % pool.len() as u64) as usize;
            let ts_ns = BASE_NS + i as i64 * STEP_NS;
            // Needles and alerts (1%) go through the JSON-value API, as the
            // sensor's alerts do. Pool events are reused in place (only ts
            // changes) so the producer measures the store API, not cloning.
            let value: Option<(Value, bool)> = if is_needle {
                let (mut n, a) = needle(KINDS[(off - 1) as usize], i);
                n["ts"] = Value::String(ts(i));
                Some((n, a))
            } else if i % 100 == 50 {
                pool[k].ts = ts(i);
                Some((serde_json::to_value(&pool[k]).expect("value"), true))
            } else {
                None
            };
            let a = match &value {
                Some((v, true)) => {
                    let mut a = alert_of(v, i);
                    if is_needle {
                        let kind = KINDS[(off - 1) as usize];
                        if kind == "rule" {
                            a["rule"] = json!("needle_rule");
                        } else {
                            a["severity"] = json!("critical");
                        }
                    }
                    alerts_sent += 1;
                    Some(a)
                }
                _ => None,
            };
            if value.is_none() {
                if value_input {
                    pool_values[k]["ts"] = Value::String(ts(i));
                } else {
                    pool[k].ts = ts(i);
                }
            }
            loop {
                let ok = match (&a, &value) {
                    (Some(a), _) => store.record_alert(a),
                    (None, Some((v, _))) => store.record_event(v),
                    (None, None) if value_input => store.record_event(&pool_values[k]),
                    (None, None) => {
                        let e = &pool[k];
                        store.record_event_with(&e.columns(ts_ns), || serde_json::to_string(e).expect("json"))
                    }
                };
                if ok {
                    break;
                }
                // Back off instead of spinning: on 2 cores a spinning producer steals the writer's CPU.
                retries += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            if (i + 1) % chunk == 0 {
                let now = Instant::now();
                let rate = chunk as f64 / (now - tchunk).as_secs_f64();
                rates.push(rate);
                println!(
                    "  {:>9} rows: {:>8.0} rows/s (last {chunk}), {:>8.0} rows/s overall",
                    i + 1,
                    rate,
                    (i + 1) as f64 / (now - t0).as_secs_f64()
                );
                tchunk = now;
            }
        }
        store.flush().expect("flush");
        let el = t0.elapsed();
        let cpu = process_cpu() - cpu0;
        writer_cpu = writer_cpu.max(thread_cpu("audit-writer"));
        let ckpt_cpu = thread_cpu("audit-ckpt");
        let index_cpu = thread_cpu("audit-index");
        let st = store.shutdown();
        if !rates.is_empty() {
            let mut r = rates.clone();
            r.sort_by(f64::total_cmp);
            println!(
                "sustained: median {:.0} rows/s over {} chunks of {chunk} (min {:.0}, max {:.0})",
                r[r.len() / 2],
                r.len(),
                r[0],
                r[r.len() - 1]
            );
        }
        println!(
            "indexer thread {:.1} us/event, checkpointer thread {:.1} us/event",
            index_cpu * 1e6 / rows as f64,
            ckpt_cpu * 1e6 / rows as f64
        );
        println!(
            "insert: {rows} rows ({alerts_sent} alerts) in {:.2}s = {:.0} rows/s through record_event/record_alert + commit; producer retries on full channel: {retries}; written {} dropped {}",
            el.as_secs_f64(),
            rows as f64 / el.as_secs_f64(),
            st.written,
            st.dropped()
        );
        println!(
            "cpu: {:.1} us/event in total (all threads), writer thread {:.1} us/event => {:.0} events/s per fully available writer core",
            cpu * 1e6 / rows as f64,
            writer_cpu * 1e6 / rows as f64,
            rows as f64 / writer_cpu.max(1e-9)
        );
    } else {
        println!("reusing existing database with {existing} rows");
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("size: {} bytes = {:.0} bytes/event", size, size as f64 / rows as f64);
    if let Ok(out) = std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .output()
    {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((name, bytes)) = l.split_once('|') {
                let b: f64 = bytes.parse().unwrap_or(0.0);
                println!("  {name:<24} {:>12.0} bytes = {:>6.1} bytes/event", b, b / rows as f64);
            }
        }
    }

    let r = AuditReader::open(&path).expect("reader");
    let stride = rows / (NEEDLES + 1);
    let mut cases: Vec<(String, QueryFilter, Option<usize>)> = Vec::new();
    let base = QueryFilter::default;
    cases.push(("pid".into(), QueryFilter { pid: Some(4_000_000), ..base() }, Some(100)));
    cases.push(("uid".into(), QueryFilter { uid: Some(77_777), ..base() }, Some(100)));
    cases.push(("exe (exact)".into(), QueryFilter { exe: Some("/opt/needle/bin/needle".into()), ..base() }, Some(100)));
    cases.push((
        "exe (glob /opt/needle/*)".into(),
        QueryFilter { exe: Some("/opt/needle/*".into()), ..base() },
        Some(100),
    ));
    cases.push((
        "exe (glob */bin/needle)".into(),
        QueryFilter { exe: Some("*/bin/needle".into()), ..base() },
        Some(100),
    ));
    cases.push(("container (prefix)".into(), QueryFilter { container: Some("feedface".into()), ..base() }, Some(100)));
    cases.push((
        "path (exact)".into(),
        QueryFilter { path: Some("/srv/needle/secret.key".into()), ..base() },
        Some(100),
    ));
    cases.push((
        "path (glob /srv/needle/*)".into(),
        QueryFilter { path: Some("/srv/needle/*".into()), ..base() },
        Some(100),
    ));
    cases.push((
        "path (glob */secret.key)".into(),
        QueryFilter { path: Some("*/secret.key".into()), ..base() },
        Some(100),
    ));
    cases.push((
        "path (glob */needle/* : wildcards at both ends)".into(),
        QueryFilter { path: Some("*/needle/*".into()), ..base() },
        Some(100),
    ));
    cases.push((
        "contains (text in the JSON)".into(),
        QueryFilter { contains: Some("secret.key".into()), ..base() },
        Some(100),
    ));
    cases.push(("addr".into(), QueryFilter { addr: Some("203.0.113.77".into()), ..base() }, Some(100)));
    cases.push(("port".into(), QueryFilter { port: Some(31337), ..base() }, Some(100)));
    cases.push(("rule".into(), QueryFilter { rule: Some("needle_rule".into()), ..base() }, Some(100)));
    cases.push((
        "severity >= critical".into(),
        QueryFilter { min_severity: Some(Severity::Critical), ..base() },
        Some(100),
    ));
    cases.push(("type".into(), QueryFilter { types: vec!["ptrace".into()], ..base() }, Some(100)));
    let mid = rows / 2;
    cases.push((
        "time window (100 rows)".into(),
        QueryFilter {
            since_ns: Some(BASE_NS + mid as i64 * STEP_NS),
            until_ns: Some(BASE_NS + (mid + 100) as i64 * STEP_NS),
            ..base()
        },
        Some(100),
    ));
    cases.push(("time since start, limit 100".into(), QueryFilter { since_ns: Some(BASE_NS), ..base() }, None));
    cases.push(("type=open, limit 100".into(), QueryFilter { types: vec!["open".into()], ..base() }, None));
    cases.push((
        "pid + type=open (combined)".into(),
        QueryFilter { pid: Some(4_000_000), types: vec!["open".into()], ..base() },
        None,
    ));
    let _ = stride;

    println!("\n| filter | rows returned | median latency (ms, 7 runs) | first run (ms) | plan |");
    println!("|---|---|---|---|---|");
    for (name, f, expect) in &cases {
        let limit = if expect.is_some() { 1000 } else { 100 };
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..7 {
            let t = Instant::now();
            n = r.query(f, limit).expect("query").len();
            times.push(t.elapsed());
        }
        if let Some(e) = expect {
            assert_eq!(n, *e, "{name}: expected {e} rows");
        }
        let plan = r.explain(f, limit).unwrap_or_default();
        let first = times[0];
        println!(
            "| {name} | {n} | {:.2} | {:.2} | {plan} |",
            median(times).as_secs_f64() * 1000.0,
            first.as_secs_f64() * 1000.0
        );
    }
    if !std::env::var("AUDIT_BENCH_VERIFY").is_ok_and(|v| v == "0") {
        let t = Instant::now();
        let rep = r.verify().expect("verify");
        println!("\nverify: {} records in {:.2}s, ok={}", rep.records, t.elapsed().as_secs_f64(), rep.ok());
    }
}
