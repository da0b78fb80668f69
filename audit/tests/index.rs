//! Schema v2 segment postings: every filter answers the same through postings
//! as through a plain scan; restarts rebuild the open segment; a real v1
//! database migrates.

mod common;

use std::time::{Duration, Instant};

use audit::{AuditReader, AuditStore, QueryFilter, Severity};
use common::*;
use serde_json::{Value, json};

const TYPES: [&str; 8] = ["exec", "open", "connect", "rename", "dns", "exit", "unlink", "accept"];

fn events() -> Vec<(Value, bool)> {
    let mut out = Vec::new();
    for i in 0..1500u64 {
        out.push((ev(i, TYPES[i as usize % TYPES.len()]), false));
        if i % 37 == 0 {
            let sev = ["info", "low", "medium", "high", "critical"][(i / 37) as usize % 5];
            out.push((alert(i, if i % 2 == 0 { "read_shadow" } else { "nc_listen" }, sev), true));
        }
    }
    out
}

fn filters() -> Vec<QueryFilter> {
    let d = QueryFilter::default;
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    vec![
        d(),
        QueryFilter { types: vec!["exec".into()], ..d() },
        QueryFilter { types: vec!["exec".into(), "alert".into()], ..d() },
        QueryFilter { pid: Some(1017), ..d() },
        QueryFilter { uid: Some(2), ..d() },
        QueryFilter { exe: Some("/usr/bin/cat".into()), ..d() },
        QueryFilter { exe: Some("/usr/local/*".into()), ..d() },
        QueryFilter { exe: Some("*curl".into()), ..d() },
        // Leading wildcards: answered by ending (reversed-column postings).
        QueryFilter { exe: Some("*/cat".into()), ..d() },
        QueryFilter { path: Some("*/file12".into()), ..d() },
        QueryFilter { path: Some("*e1?3".into()), ..d() },
        QueryFilter { path: Some("*[0-9]7".into()), types: vec!["open".into()], ..d() },
        QueryFilter { path: Some("*/nothing/ends/like/this".into()), ..d() },
        // Wildcards at both ends: segments are skipped by their trigram maps.
        QueryFilter { path: Some("*file12*".into()), ..d() },
        QueryFilter { path: Some("*/etc/*".into()), ..d() },
        QueryFilter { path: Some("*e[0-9]1?*".into()), ..d() },
        QueryFilter { exe: Some("*local*".into()), ..d() },
        QueryFilter { path: Some("*zzz*".into()), ..d() },
        QueryFilter { container: Some("abcdef".into()), ..d() },
        QueryFilter { container: Some("abcdef0123456789".into()), ..d() },
        QueryFilter { path: Some("/etc/file1?".into()), ..d() },
        QueryFilter { path: Some("/etc/file100".into()), ..d() },
        QueryFilter { addr: Some("192.0.2.7".into()), ..d() },
        QueryFilter { addr: Some("192.0.2.1*".into()), ..d() },
        QueryFilter { port: Some(22), ..d() },
        QueryFilter { rule: Some("read_shadow".into()), ..d() },
        QueryFilter { rule: Some("nc_*".into()), ..d() },
        QueryFilter { min_severity: Some(Severity::High), ..d() },
        QueryFilter { contains: Some("file12".into()), ..d() },
        QueryFilter { pid: Some(1017), types: vec!["open".into(), "rename".into()], ..d() },
        QueryFilter { uid: Some(1), exe: Some("/usr/bin/cat".into()), port: Some(443), ..d() },
        QueryFilter { since_ns: Some(now - 45_000_000_000), ..d() },
        QueryFilter { until_ns: Some(now - 45_000_000_000), types: vec!["dns".into()], ..d() },
        QueryFilter { pid: Some(999_999), ..d() },
        QueryFilter { after_seq: Some(1234), types: vec!["exit".into()], ..d() },
    ]
}

fn build(path: &std::path::Path, seg_rows: u64, evs: &[(Value, bool)]) {
    let mut c = cfg(path);
    c.index_segment_rows = seg_rows;
    let store = AuditStore::open(&c).unwrap();
    for (k, (e, is_alert)) in evs.iter().enumerate() {
        if *is_alert {
            while !store.record_alert(e) {
                std::thread::sleep(Duration::from_micros(100));
            }
        } else {
            record(&store, e);
        }
        if k == 700 {
            // Restart mid-segment: the open segment's postings are rebuilt from the table.
            store.flush().unwrap();
            drop(store);
            return build_rest(path, seg_rows, &evs[701..]);
        }
    }
    store.shutdown();
}

fn build_rest(path: &std::path::Path, seg_rows: u64, evs: &[(Value, bool)]) {
    let mut c = cfg(path);
    c.index_segment_rows = seg_rows;
    let store = AuditStore::open(&c).unwrap();
    for (e, is_alert) in evs {
        if *is_alert {
            while !store.record_alert(e) {
                std::thread::sleep(Duration::from_micros(100));
            }
        } else {
            record(&store, e);
        }
    }
    store.shutdown();
}

#[test]
fn postings_answer_exactly_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let evs = events();
    let (small, big) = (dir.path().join("small.db"), dir.path().join("big.db"));
    build(&small, 64, &evs); // ~25 indexed segments + a tail
    build(&big, 1 << 20, &evs); // everything in the un-indexed tail: plain scans
    let (a, b) = (AuditReader::open(&small).unwrap(), AuditReader::open(&big).unwrap());
    assert!(a.verify().unwrap().ok() && b.verify().unwrap().ok());
    let segs: i64 = sqlite3(&small, "SELECT count(*) FROM segments").trim().parse().unwrap();
    assert!(segs >= 20, "only {segs} segments");
    assert!(a.explain(&QueryFilter::default(), 10).unwrap().starts_with(&format!("{segs} indexed segments")));
    for f in filters() {
        let key = |v: Vec<audit::StoredRecord>| v.into_iter().map(|r| (r.seq, r.json)).collect::<Vec<_>>();
        let all_a = key(a.query(&f, 0).unwrap());
        assert_eq!(all_a, key(b.query(&f, 0).unwrap()), "{f:?}");
        assert_eq!(key(a.query(&f, 7).unwrap()), key(b.query(&f, 7).unwrap()), "{f:?} limit 7");
        let mut scanned = Vec::new();
        a.scan(&f, |r| {
            scanned.push((r.seq, r.json));
            Ok(true)
        })
        .unwrap();
        assert_eq!(scanned, all_a, "{f:?} scan");
    }
    // Sanity: the filters really select something.
    assert_eq!(a.query(&QueryFilter { pid: Some(1017), ..Default::default() }, 0).unwrap().len(), 1);
    assert_eq!(a.query(&QueryFilter { types: vec!["exec".into()], ..Default::default() }, 0).unwrap().len(), 188);
}

/// A trail of `n` open events (`ev(i, "open")`) in segments of `seg_rows`.
fn opens_trail(path: &std::path::Path, n: u64, seg_rows: u64) -> audit::AuditConfig {
    let mut c = cfg(path);
    c.index_segment_rows = seg_rows;
    let store = AuditStore::open(&c).unwrap();
    for i in 0..n {
        record(&store, &ev(i, "open"));
    }
    store.shutdown();
    c
}

/// The `n` of every event the filter finds, in chain order.
fn event_numbers(r: &AuditReader, f: &QueryFilter) -> Vec<u64> {
    r.query(f, 0)
        .unwrap()
        .iter()
        .map(|x| serde_json::from_str::<Value>(&x.json).unwrap()["n"].as_u64().unwrap())
        .collect()
}

/// A glob with wildcards at both ends reads only the segments whose trigram
/// map holds its literal's trigrams: blank one segment's map and its row is
/// no longer found (so the maps are really consulted), while the untouched
/// maps never hide a row (the scan-equivalence test above).
#[test]
fn trigram_maps_decide_which_segments_a_contains_glob_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    opens_trail(&path, 300, 50);
    // 6 complete segments, each with a map for path and for exe.
    assert_eq!(sqlite3(&path, "SELECT count(*), count(DISTINCT seg) FROM grams").trim(), "12|6");
    let f = QueryFilter { path: Some("*ile12*".into()), ..Default::default() };
    let ns = |r: &AuditReader| event_numbers(r, &f);
    let expected: Vec<u64> = std::iter::once(12).chain(120..130).collect();
    assert_eq!(ns(&AuditReader::open(&path).unwrap()), expected);
    // Rows 120..129 are seqs 121..130: segment 2. Blank its path map.
    sqlite3(&path, "UPDATE grams SET bits = zeroblob(8192) WHERE seg = 2 AND col = 5");
    assert_eq!(ns(&AuditReader::open(&path).unwrap()), vec![12]);
    // A segment without a map (older trail) is read.
    sqlite3(&path, "DELETE FROM grams WHERE seg = 2");
    assert_eq!(ns(&AuditReader::open(&path).unwrap()), expected);
}

/// Segments stored before the reversed columns existed (a v2 trail) have no
/// postings by ending; a leading-wildcard glob falls back to the plain glob
/// there and still finds every row.
#[test]
fn globs_by_ending_also_cover_segments_indexed_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let c = opens_trail(&path, 400, 50);
    let f = QueryFilter { path: Some("*/file1?7".into()), ..Default::default() };
    let expected: Vec<u64> = (0..400u64).filter(|i| (100..200).contains(i) && i % 10 == 7).collect();
    let seqs = |r: &AuditReader| event_numbers(r, &f);
    let r = AuditReader::open(&path).unwrap();
    assert!(r.explain(&f, 0).unwrap().contains("postings on path (by ending)"), "{}", r.explain(&f, 0).unwrap());
    assert_eq!(seqs(&r), expected);
    drop(r);
    // Make segments 0..4 look like v2 segments.
    sqlite3(
        &path,
        "DELETE FROM postings WHERE seg < 4 AND col IN (11, 12); UPDATE meta SET value = 4 WHERE key = 'suffix_postings_from'",
    );
    let r = AuditReader::open(&path).unwrap();
    assert_eq!(seqs(&r), expected);
    // Without the fallback those segments' rows would be missing: the marker matters.
    sqlite3(&path, "UPDATE meta SET value = 0 WHERE key = 'suffix_postings_from'");
    let r = AuditReader::open(&path).unwrap();
    assert!(seqs(&r).len() < expected.len());
    drop(r);

    // A real v2 trail: no reversed postings, no marker. Readable as it is...
    sqlite3(
        &path,
        "DELETE FROM postings WHERE col IN (11, 12); DELETE FROM meta WHERE key = 'suffix_postings_from'; DROP TABLE grams; PRAGMA user_version = 2",
    );
    assert_eq!(seqs(&AuditReader::open(&path).unwrap()), expected);
    // ...and the writer migrates it: segments from the first one it indexes have them.
    let store = AuditStore::open(&c).unwrap();
    for i in 400..500u64 {
        record(&store, &ev(i, "open"));
    }
    store.shutdown();
    assert_eq!(sqlite3(&path, "PRAGMA user_version").trim(), "3");
    assert_eq!(sqlite3(&path, "SELECT value FROM meta WHERE key = 'suffix_postings_from'").trim(), "8");
    assert!(sqlite3(&path, "SELECT count(*) FROM postings WHERE col = 11 AND seg = 8").trim() != "0");
    let f2 = QueryFilter { path: Some("*/file4?7".into()), ..Default::default() };
    assert_eq!(AuditReader::open(&path).unwrap().query(&f2, 0).unwrap().len(), 10);
}

#[test]
fn retention_drops_postings_with_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut c = cfg(&path);
    c.index_segment_rows = 100;
    c.max_age = audit::HumanDuration(Duration::from_secs(86_400));
    let store = AuditStore::open(&c).unwrap();
    for i in 0..1000 {
        let mut e = ev(i, "open");
        e["ts"] = json!(ts_ago(2 * 86_400));
        record(&store, &e);
    }
    for i in 0..150 {
        record(&store, &ev(5000 + i, "exec"));
    }
    store.flush().unwrap();
    let t = Instant::now();
    while store.stats().pruned < 1000 {
        assert!(t.elapsed() < Duration::from_secs(60), "no pruning");
        std::thread::sleep(Duration::from_millis(20));
    }
    store.shutdown();
    // Segments 0..9 (seq 1..1000) are gone with their postings; 10 (1001..1100) stays.
    assert_eq!(sqlite3(&path, "SELECT min(seg), count(*) FROM segments").trim(), "10|1");
    assert_eq!(sqlite3(&path, "SELECT count(*) FROM postings WHERE seg < 10").trim(), "0");
    assert_eq!(sqlite3(&path, "SELECT count(*) FROM grams WHERE seg < 10").trim(), "0");
    let r = AuditReader::open(&path).unwrap();
    assert!(r.verify().unwrap().ok());
    assert_eq!(r.query(&QueryFilter { types: vec!["exec".into()], ..Default::default() }, 0).unwrap().len(), 150);
    assert_eq!(r.query(&QueryFilter { pid: Some(6000 + 20), ..Default::default() }, 0).unwrap().len(), 1);
}

fn count_before_exec(r: &AuditReader) -> usize {
    r.query(&QueryFilter { types: vec!["exec".into()], ..Default::default() }, 0).unwrap().len()
}

#[test]
fn a_real_v1_database_migrates_and_keeps_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1_audit.sql");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("sqlite3 '{}' < '{fixture}'", path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sqlite3(&path, "PRAGMA user_version").trim(), "1");
    let count = |sql: &str| sqlite3(&path, sql).trim().parse::<usize>().unwrap();
    let opens = count("SELECT count(*) FROM records WHERE type = 'open'");
    let pid = sqlite3(&path, "SELECT pid FROM records WHERE seq = 33").trim().parse::<u64>().unwrap();
    let by_pid = count(&format!("SELECT count(*) FROM records WHERE pid = {pid}"));
    let alerts = count("SELECT count(*) FROM records WHERE rule IS NOT NULL");
    assert!(opens > 10 && alerts == 1);

    // Readers do not migrate; they say how to.
    let e = AuditReader::open(&path).err().unwrap().to_string();
    assert!(e.contains("schema version 1") && e.contains("migrate"), "{e}");

    let mut c = cfg(&path);
    c.index_segment_rows = 16; // 60 v1 rows = 3 segments to catch up + an open one
    let store = AuditStore::open(&c).unwrap();
    for i in 0..30 {
        record(&store, &ev(i, "exec"));
    }
    store.flush().unwrap();
    let t = Instant::now();
    while count("SELECT count(*) FROM segments") < 5 {
        assert!(t.elapsed() < Duration::from_secs(30), "catch-up indexing did not run");
        std::thread::sleep(Duration::from_millis(20));
    }
    store.shutdown();

    assert_eq!(sqlite3(&path, "PRAGMA user_version").trim(), "3");
    assert_eq!(count("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'records_%'"), 0);
    let r = AuditReader::open(&path).unwrap();
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    assert_eq!((rep.records, rep.chain.as_str()), (90, "sha256"));
    let q = |f: QueryFilter| r.query(&f, 0).unwrap();
    assert_eq!(q(QueryFilter { types: vec!["open".into()], ..Default::default() }).len(), opens);
    assert_eq!(q(QueryFilter { pid: Some(pid), ..Default::default() }).len(), by_pid);
    assert_eq!(q(QueryFilter { min_severity: Some(Severity::Info), ..Default::default() }).len(), alerts);
    let execs = count_before_exec(&r);
    assert!(execs >= 30, "{execs}");
    assert!(r.explain(&QueryFilter::default(), 1).unwrap().starts_with("5 indexed segments"));
}

#[test]
fn time_filters_find_marker_rows_whose_time_is_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut c = cfg(&path);
    c.index_segment_rows = 64;
    c.channel_capacity = 32;
    let store = AuditStore::open(&c).unwrap();
    // Events stamped a day ago; bursts overflow the small channel, so the
    // writer adds audit_dropped markers stamped now in between.
    for round in 0..20u64 {
        for i in 0..200 {
            let mut e = ev(round * 1000 + i, "open");
            e["ts"] = json!(ts_ago(86_400 - (round * 200 + i) as i64));
            let _ = store.record_event(&e);
        }
        store.flush().unwrap();
    }
    store.shutdown();
    let markers: usize = sqlite3(&path, "SELECT count(*) FROM records WHERE kind = 2").trim().parse().unwrap();
    assert!(markers > 0, "no drop markers were written");
    let segs: usize = sqlite3(&path, "SELECT count(*) FROM segments").trim().parse().unwrap();
    assert!(segs > 0);
    let r = AuditReader::open(&path).unwrap();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
    let day = 86_400_000_000_000i64;
    for (since, until) in [
        (Some(now - 60_000_000_000), None),
        (Some(now - day), Some(now - day + 1_000_000_000_000)),
        (Some(now - day + 500_000_000_000), Some(now - 3_600_000_000_000)),
        (None, Some(now - day + 100_000_000_000)),
    ] {
        let mut sql = "SELECT group_concat(seq) FROM (SELECT seq FROM records WHERE 1".to_string();
        if let Some(s) = since {
            sql += &format!(" AND ts_ns >= {s}");
        }
        if let Some(u) = until {
            sql += &format!(" AND ts_ns < {u}");
        }
        sql += " ORDER BY seq)";
        let want = sqlite3(&path, &sql).trim().to_string();
        let f = QueryFilter { since_ns: since, until_ns: until, ..Default::default() };
        let got: Vec<String> = r.query(&f, 0).unwrap().iter().map(|r| r.seq.to_string()).collect();
        assert_eq!(got.join(","), want, "since {since:?} until {until:?}");
    }
}
