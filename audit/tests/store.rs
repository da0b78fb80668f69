//! Writer + reader on a real SQLite file: recording, filtering, queries, drops, concurrency.

mod common;

use std::time::{Duration, Instant};

use audit::{AuditConfig, AuditReader, AuditStore, KIND_EVENT, QueryFilter, Severity};
use common::*;
use serde_json::json;

const TYPES: [&str; 8] = ["exec", "open", "connect", "rename", "dns", "exit", "unlink", "accept"];

#[test]
fn records_and_queries_every_indexed_filter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/audit.db");
    let store = AuditStore::open(&cfg(&path)).unwrap();
    for i in 0..400 {
        record(&store, &ev(i, TYPES[i as usize % TYPES.len()]));
    }
    assert!(store.record_alert(&alert(7, "read_shadow", "high")));
    assert!(store.record_alert(&alert(8, "nc_listen", "critical")));
    assert!(store.record_alert(&alert(9, "odd", "info")));
    // Unknown/missing fields never fail a write.
    for junk in [
        json!(null),
        json!(42),
        json!({"type": "mystery", "process": "nope", "ts": "not a time"}),
        json!({"process": {"pid": u64::MAX}}),
    ] {
        record(&store, &junk);
    }
    store.flush().unwrap();
    let st = store.stats();
    assert_eq!((st.written, st.dropped(), st.degraded), (407, 0, false), "{st:?}");
    drop(store);

    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    let r = AuditReader::open(&path).unwrap();
    let q = |f: QueryFilter| r.query(&f, 0).unwrap();
    let all = q(QueryFilter::default());
    assert_eq!(all.len(), 407);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));

    assert_eq!(q(QueryFilter { types: vec!["exec".into()], ..Default::default() }).len(), 50);
    assert_eq!(q(QueryFilter { types: vec!["exec".into(), "dns".into()], ..Default::default() }).len(), 100);
    let by_pid = q(QueryFilter { pid: Some(1000 + 17), ..Default::default() });
    assert_eq!(by_pid.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&by_pid[0].json).unwrap();
    assert_eq!((v["n"].as_u64(), v["type"].as_str()), (Some(17), Some(TYPES[17 % 8])));
    // The huge u64 pid round-trips bit-for-bit through i64.
    assert_eq!(q(QueryFilter { pid: Some(u64::MAX), ..Default::default() }).len(), 1);
    // Odd i use curl: 200 events + the alerts about events 7 and 9.
    assert_eq!(q(QueryFilter { exe: Some("/usr/local/*".into()), ..Default::default() }).len(), 202);
    let events_only = TYPES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        q(QueryFilter { exe: Some("/usr/bin/cat".into()), types: events_only, ..Default::default() }).len(),
        200
    );
    assert_eq!(
        q(QueryFilter { container: Some("abcdef".into()), types: vec!["exec".into()], ..Default::default() }).len(),
        10
    );
    assert_eq!(
        q(QueryFilter { uid: Some(2), types: vec!["open".into()], ..Default::default() }).len(),
        (0..400).filter(|i| i % 8 == 1 && i % 3 == 2).count()
    );
    let f = q(QueryFilter { path: Some("/etc/file1?".into()), ..Default::default() });
    assert!(!f.is_empty() && f.iter().all(|r| r.path.as_deref().unwrap().starts_with("/etc/file1")));
    assert_eq!(
        q(QueryFilter { path: Some("/etc/file*".into()), types: vec!["alert".into()], ..Default::default() }).len(),
        3
    );
    let net = q(QueryFilter { addr: Some("192.0.2.2".into()), ..Default::default() });
    assert!(net.iter().all(|r| r.daddr.as_deref() == Some("192.0.2.2")) && !net.is_empty());
    assert_eq!(q(QueryFilter { port: Some(22), ..Default::default() }).len(), 50); // the accepts (odd i)
    assert_eq!(q(QueryFilter { rule: Some("read_shadow".into()), ..Default::default() }).len(), 1);
    assert_eq!(q(QueryFilter { min_severity: Some(Severity::High), ..Default::default() }).len(), 2);
    assert_eq!(q(QueryFilter { min_severity: Some(Severity::Info), ..Default::default() }).len(), 3);
    assert_eq!(q(QueryFilter { contains: Some("\"mystery\"".into()), ..Default::default() }).len(), 1);
    // Time: events were stamped 60 s ago, alerts 30 s ago; the junk got "now".
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    assert_eq!(q(QueryFilter { since_ns: Some(now - 45_000_000_000), ..Default::default() }).len(), 7);
    assert_eq!(q(QueryFilter { until_ns: Some(now - 45_000_000_000), ..Default::default() }).len(), 400);
    // Newest N, oldest first.
    let last3 = r.query(&QueryFilter::default(), 3).unwrap();
    assert_eq!(last3.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![405, 406, 407]);

    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    assert_eq!(rep.records, 407);
    let stats = r.stats().unwrap();
    assert_eq!(stats.records, 407);
    assert!(stats.by_type.iter().any(|(t, n)| t == "alert" && *n == 3));
    assert!(stats.by_severity.iter().any(|(s, n)| s == "critical" && *n == 1));
    assert!(stats.checkpoints >= 1);
}

#[test]
fn config_filters_types_and_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut c = cfg(&path);
    c.exclude_types = vec!["exit".into()];
    c.skip_path_prefixes = vec!["/etc/file1".into()];
    let store = AuditStore::open(&c).unwrap();
    assert!(!store.record_event(&ev(1, "exit")));
    assert!(!store.record_event(&ev(1, "open"))); // /etc/file1
    assert!(!store.record_event(&ev(12, "open"))); // /etc/file12
    assert!(store.record_event(&ev(2, "open")));
    // Alerts are never filtered, even about a skipped path.
    assert!(store.record_alert(&alert(1, "r", "low")));
    store.flush().unwrap();
    let st = store.shutdown();
    assert_eq!((st.filtered, st.written), (3, 2));
    let r = AuditReader::open(&path).unwrap();
    assert_eq!(r.query(&QueryFilter::default(), 0).unwrap().len(), 2);

    let mut c = cfg(&path);
    c.include_types = vec!["exec".into()];
    let store = AuditStore::open(&c).unwrap();
    assert!(!store.record_event(&ev(3, "open")));
    assert!(store.record_event(&ev(3, "exec")));
    drop(store); // Drop flushes too.
    assert_eq!(AuditReader::open(&path).unwrap().query(&QueryFilter::default(), 0).unwrap().len(), 3);
}

#[test]
fn full_channel_drops_are_counted_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut c = cfg(&path);
    c.channel_capacity = 16;
    let store = AuditStore::open(&c).unwrap();
    let mut sent = 0u64;
    let mut ok = 0u64;
    // A burst far faster than one writer can commit: some must be dropped, never blocked.
    let t = Instant::now();
    for i in 0..20_000 {
        sent += 1;
        ok += store.record_event(&ev(i, "open")) as u64;
    }
    assert!(t.elapsed() < Duration::from_secs(10), "record_event blocked");
    store.flush().unwrap();
    // Let the writer record the drop marker (written with the next batch).
    record(&store, &ev(0, "exec"));
    store.flush().unwrap();
    let st = store.shutdown();
    assert!(st.dropped_channel_full > 0, "{st:?}");
    assert_eq!(st.accepted, ok + 1);
    assert_eq!(st.accepted + st.dropped_channel_full, sent + 1);
    assert_eq!(st.written, st.accepted);
    let r = AuditReader::open(&path).unwrap();
    let markers = r.query(&QueryFilter { types: vec!["audit_dropped".into()], ..Default::default() }, 0).unwrap();
    let total: u64 = markers
        .iter()
        .map(|m| serde_json::from_str::<serde_json::Value>(&m.json).unwrap()["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(total, st.dropped_channel_full);
    let events =
        r.query(&QueryFilter::default(), 0).unwrap().into_iter().filter(|r| r.kind == KIND_EVENT).count() as u64;
    assert_eq!(events, st.written);
    assert!(r.verify().unwrap().ok());
}

#[test]
fn readers_never_block_the_writer_and_see_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let store = AuditStore::open(&cfg(&path)).unwrap();
    record(&store, &ev(0, "exec"));
    store.flush().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let p2 = path.clone();
    let s2 = stop.clone();
    let reader = std::thread::spawn(move || {
        let r = AuditReader::open(&p2).unwrap();
        let mut checks = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let rep = r.verify().unwrap();
            assert!(rep.ok(), "{:?}", rep.problem);
            r.query(&QueryFilter { types: vec!["open".into()], ..Default::default() }, 50).unwrap();
            checks += 1;
        }
        checks
    });
    let t = Instant::now();
    for i in 0..20_000 {
        record(&store, &ev(i, "open"));
    }
    store.flush().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let checks = reader.join().unwrap();
    assert!(checks > 0);
    let st = store.shutdown();
    assert_eq!(st.written, 20_001);
    eprintln!("20k events with a concurrent verifier in {:?} ({checks} verifications)", t.elapsed());
    assert!(AuditReader::open(&path).unwrap().verify().unwrap().ok());
}

#[test]
fn reopen_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    for round in 0..3u64 {
        let store = AuditStore::open(&cfg(&path)).unwrap();
        for i in 0..100 {
            record(&store, &ev(round * 100 + i, "open"));
        }
        store.shutdown();
    }
    let r = AuditReader::open(&path).unwrap();
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    assert_eq!((rep.records, rep.last_seq), (300, 300));
}

/// The sensor's path: columns read from its typed event, the JSON serialized
/// only when the event is kept. It must store exactly what the JSON path
/// stores (same columns, so the same queries find it), and must not
/// serialize what the filter drops.
#[test]
fn typed_columns_store_what_the_json_path_stores() {
    use audit::{EventColumns, ReadOpens};
    use std::borrow::Cow;
    use std::cell::Cell;

    let dir = tempfile::tempdir().unwrap();
    let json_db = dir.path().join("json.db");
    let typed_db = dir.path().join("typed.db");
    let mut c = cfg(&json_db);
    c.read_opens = ReadOpens::Sensitive; // /etc/ is sensitive by default
    let json_store = AuditStore::open(&c).unwrap();
    let typed_store = AuditStore::open(&AuditConfig { path: typed_db.clone(), ..c.clone() }).unwrap();

    let serialized = Cell::new(0);
    let mut kept = 0;
    for i in 0..60u64 {
        let typ = TYPES[i as usize % TYPES.len()];
        let mut e = ev(i, typ);
        if i % 7 == 0 && typ == "open" {
            e["file"]["path"] = json!(format!("/usr/share/doc/f{i}")); // a read-only open the filter drops
        }
        let daddr = e.pointer("/net/daddr").and_then(|v| v.as_str()).map(str::to_owned);
        let cols = EventColumns {
            ts_ns: audit::time::parse_rfc3339_ns(e["ts"].as_str().unwrap()),
            typ: Some(typ),
            pid: e.pointer("/process/pid").and_then(|v| v.as_i64()),
            uid: e.pointer("/process/uid").and_then(|v| v.as_i64()),
            exe: e.pointer("/process/exe").and_then(|v| v.as_str()),
            container: e.pointer("/process/container_id").and_then(|v| v.as_str()),
            path: e.pointer("/file/path").and_then(|v| v.as_str()),
            daddr: daddr.as_deref().map(Cow::Borrowed),
            dport: e.pointer("/net/dport").and_then(|v| v.as_i64()),
            read_only_open: typ == "open",
        };
        assert_eq!(cols, EventColumns::from_json(&e), "event {i}");
        let stored = typed_store.record_event_with(&cols, || {
            serialized.set(serialized.get() + 1);
            serde_json::to_string(&e).unwrap()
        });
        assert_eq!(stored, json_store.record_event(&e), "event {i}");
        kept += stored as usize;
    }
    assert!(kept > 40 && kept < 60, "{kept}");
    assert_eq!(serialized.get(), kept, "only kept events are serialized");
    for s in [json_store, typed_store] {
        s.flush().unwrap();
        assert_eq!((s.stats().written, s.stats().filtered), (kept as u64, 60 - kept as u64));
        s.shutdown();
    }
    let cols = "seq, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, json";
    let dump = |p: &std::path::Path| sqlite3(p, &format!("SELECT {cols} FROM records WHERE kind = 0 ORDER BY seq"));
    assert_eq!(dump(&json_db), dump(&typed_db));
    let r = AuditReader::open(&typed_db).unwrap();
    assert!(r.verify().unwrap().ok());
    let q = QueryFilter { addr: Some("192.0.2.2".into()), ..Default::default() };
    assert_eq!(r.query(&q, 0).unwrap().len(), 1);
}
