//! Retention by age and by size runs in the writer and keeps the chain verifiable.

mod common;

use std::time::{Duration, Instant};

use audit::{AuditReader, AuditStore, ByteSize, HumanDuration, QueryFilter};
use common::*;

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn age_retention_prunes_old_records_and_verify_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut c = cfg(&path);
    c.max_age = HumanDuration(Duration::from_secs(86_400));
    let store = AuditStore::open(&c).unwrap();
    // 25k records from 2 days ago (3 prune chunks), then 100 fresh ones.
    for i in 0..25_000 {
        let mut e = ev(i, "open");
        e["ts"] = serde_json::json!(ts_ago(2 * 86_400));
        record(&store, &e);
    }
    for i in 0..100 {
        record(&store, &ev(100_000 + i, "exec"));
    }
    store.flush().unwrap();
    wait_for("pruning", Duration::from_secs(60), || store.stats().pruned >= 25_000);
    // Writing keeps working during and after pruning.
    record(&store, &ev(7, "exec"));
    store.flush().unwrap();
    let st = store.shutdown();
    assert_eq!(st.pruned, 25_000);

    let r = AuditReader::open(&path).unwrap();
    let left = r.query(&QueryFilter::default(), 0).unwrap();
    assert_eq!(left.len(), 101);
    assert!(left.iter().all(|r| r.typ.as_deref() == Some("exec")));
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    assert_eq!((rep.first_seq, rep.records), (25_001, 101));

    // Deleting the oldest surviving record is still caught after pruning.
    sqlite3(&path, "DELETE FROM records WHERE seq = 25001");
    let p = AuditReader::open(&path).unwrap().verify().unwrap().problem.unwrap();
    assert_eq!((p.kind, p.seq), (audit::ProblemKind::Deleted, Some(25_001)), "{p}");
}

#[test]
fn size_retention_keeps_the_database_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut c = cfg(&path);
    c.max_bytes = ByteSize(2 << 20);
    let store = AuditStore::open(&c).unwrap();
    let pad = "x".repeat(1000);
    for i in 0..20_000 {
        let mut e = ev(i, "open");
        e["pad"] = serde_json::json!(pad);
        record(&store, &e);
    }
    store.flush().unwrap();
    wait_for("size pruning", Duration::from_secs(60), || {
        let r = AuditReader::open(&path).unwrap();
        let s = r.stats().unwrap();
        s.file_bytes.saturating_sub(s.free_bytes) <= 2 << 20 && store.stats().pruned > 0
    });
    let st = store.shutdown();
    let r = AuditReader::open(&path).unwrap();
    let s = r.stats().unwrap();
    eprintln!("pruned {} of 20000; file {} bytes, {} free", st.pruned, s.file_bytes, s.free_bytes);
    // Incremental vacuum hands the space back: the file itself stays near the limit.
    assert!(s.file_bytes < 4 << 20, "file {} bytes", s.file_bytes);
    assert_eq!(s.records + st.pruned, 20_000);
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    // The newest records are the ones kept.
    assert_eq!(rep.last_seq, 20_000);
}
