//! Disk full on a real 2 MiB tmpfs: degrade, buffer (bounded, drops counted), recover.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use audit::{AuditError, AuditReader, AuditStore, HealthEvent, KIND_EVENT, QueryFilter};
use common::*;

struct Mount<'a>(&'a Path);

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

#[test]
fn disk_full_degrades_buffers_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    // a disk-full test that cannot fill a disk must fail, not pass quietly
    assert!(ok, "cannot mount a tmpfs for the disk-full test: run as root (sudo make test)");
    let _guard = Mount(&mnt);
    let path = mnt.join("audit.db");
    let mut c = cfg(&path);
    c.degraded_buffer_rows = 2_000;
    c.batch_rows = 200;
    let (htx, hrx) = mpsc::channel();
    let store = AuditStore::open_with_health(
        &c,
        Box::new(move |h| {
            let _ = htx.send(h.clone());
        }),
    )
    .unwrap();

    // Fill the disk.
    let pad = "p".repeat(800);
    let mut i = 0u64;
    let t = Instant::now();
    while !store.is_degraded() {
        assert!(t.elapsed() < Duration::from_secs(60), "never degraded");
        let mut e = ev(i, "open");
        e["pad"] = serde_json::json!(pad);
        record(&store, &e);
        i += 1;
    }
    match hrx.recv_timeout(Duration::from_secs(5)).unwrap() {
        HealthEvent::Degraded { reason } => assert!(reason.contains("full") || reason.contains("disk"), "{reason}"),
        other => panic!("expected Degraded, got {other:?}"),
    }
    let st = store.stats();
    assert!(st.degraded && st.degraded_reason.is_some(), "{st:?}");

    // Keep recording while degraded: 2000 buffered, the rest counted as dropped. Never blocks.
    let t = Instant::now();
    for j in 0..5_000 {
        record(&store, &ev(1_000_000 + j, "exec"));
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(matches!(store.flush(), Err(AuditError::Degraded(_))));
    // flush() returns as soon as it sees the degraded state; the writer may
    // still be taking the last rows off the channel, so let the counters settle.
    let t = Instant::now();
    let mut st = store.stats();
    while st.dropped_degraded < 3_000 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        st = store.stats();
    }
    assert_eq!(st.buffered, 2_000, "{st:?}");
    assert!(st.dropped_degraded >= 3_000, "{st:?}");

    // Space comes back.
    assert!(Command::new("mount").args(["-o", "remount,size=64m"]).arg(&mnt).status().unwrap().success());
    match hrx.recv_timeout(Duration::from_secs(10)).unwrap() {
        HealthEvent::Recovered { lost, .. } => assert_eq!(lost, st.dropped_degraded),
        other => panic!("expected Recovered, got {other:?}"),
    }
    store.flush().unwrap();
    record(&store, &ev(42, "exec"));
    let st = store.shutdown();
    assert!(!st.degraded);
    assert_eq!(st.accepted, st.written + st.dropped_degraded, "every accepted row is written or counted: {st:?}");

    let r = AuditReader::open(&path).unwrap();
    let rep = r.verify().unwrap();
    assert!(rep.ok(), "{:?}", rep.problem);
    let rows = r.query(&QueryFilter::default(), 0).unwrap();
    assert_eq!(rows.iter().filter(|r| r.kind == KIND_EVENT).count() as u64, st.written);
    // The gap is visible in the trail itself.
    assert!(rows.iter().any(|r| r.typ.as_deref() == Some("audit_recovered")));
    let dropped: u64 = rows
        .iter()
        .filter(|r| r.typ.as_deref() == Some("audit_dropped"))
        .map(|r| serde_json::from_str::<serde_json::Value>(&r.json).unwrap()["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(dropped, st.dropped_degraded);
}
