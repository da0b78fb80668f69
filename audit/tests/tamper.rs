//! Tampering with the sqlite3 CLI; `verify` must catch each and name the record.

mod common;

use std::path::{Path, PathBuf};

use audit::{AuditCommand, AuditReader, AuditStore, DbArg, ProblemKind, run_cli_with};
use common::*;

/// A closed database with 100 records (checkpoints every 25).
fn fresh(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let store = AuditStore::open(&cfg(&path)).unwrap();
    for i in 0..100 {
        record(&store, &ev(i, if i % 2 == 0 { "exec" } else { "open" }));
        if i % 10 == 9 {
            // Small batches: periodic checkpoints at 30, 60, 90 and one at shutdown.
            store.flush().unwrap();
        }
    }
    store.shutdown();
    let rep = AuditReader::open(&path).unwrap().verify().unwrap();
    assert!(rep.ok() && rep.checkpoints == 4, "{rep:?}");
    path
}

fn check(sql: &str, kind: ProblemKind, seq: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path(), "t.db");
    sqlite3(&path, sql);
    let rep = AuditReader::open(&path).unwrap().verify().unwrap();
    let p = rep.problem.unwrap_or_else(|| panic!("not detected: {sql}"));
    assert_eq!((p.kind, p.seq), (kind, Some(seq)), "{sql}: {p}");

    // The CLI reports it too, with a non-zero exit and the record named.
    let mut out = Vec::new();
    let code = run_cli_with(
        AuditCommand::Verify { db: DbArg { db: path.clone() }, json: false, key_file: None, expect_head: None },
        &mut out,
        &|| false,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{text}");
    assert!(text.contains(&format!("seq {seq}")), "{text}");
}

#[test]
fn edit_json_is_detected() {
    check("UPDATE records SET json = replace(json, 'cat', 'dog') WHERE seq = 10", ProblemKind::Modified, 10);
}

#[test]
fn edit_indexed_column_is_detected() {
    check("UPDATE records SET pid = 4242 WHERE seq = 11", ProblemKind::Modified, 11);
    check("UPDATE records SET exe = '/bin/true' WHERE seq = 12", ProblemKind::Modified, 12);
    // Same bytes, different storage class.
    check("UPDATE records SET exe = CAST(exe AS BLOB) WHERE seq = 13", ProblemKind::Modified, 13);
}

#[test]
fn edit_with_recomputed_looking_hash_is_detected() {
    // Hash copied from another row: the link into this row breaks.
    check(
        "UPDATE records SET hash = (SELECT hash FROM records WHERE seq = 5) WHERE seq = 20",
        ProblemKind::Modified,
        20,
    );
}

#[test]
fn delete_is_detected() {
    check("DELETE FROM records WHERE seq = 20", ProblemKind::Deleted, 20);
    check("DELETE FROM records WHERE seq BETWEEN 30 AND 39", ProblemKind::Deleted, 30);
    check("DELETE FROM records WHERE seq <= 3", ProblemKind::Deleted, 1);
    check("DELETE FROM records WHERE seq > 95", ProblemKind::Deleted, 96);
}

#[test]
fn delete_tail_and_rewind_head_is_detected_by_checkpoints() {
    // The attacker also moves the head back; checkpoint 4 (seq 100) still knows better.
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path(), "t.db");
    sqlite3(
        &path,
        "DELETE FROM records WHERE seq > 90; UPDATE head SET seq = 90, hash = (SELECT hash FROM records WHERE seq = 90);",
    );
    let p = AuditReader::open(&path).unwrap().verify().unwrap().problem.expect("detected");
    assert_eq!(p.kind, ProblemKind::Head, "{p}");
}

#[test]
fn insert_is_detected() {
    // Appended behind the writer's back.
    check(
        "INSERT INTO records SELECT 101, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, rule, severity, json, hash FROM records WHERE seq = 100",
        ProblemKind::Inserted,
        101,
    );
    // Inserted in the middle, later records renumbered to make room.
    check(
        "UPDATE records SET seq = seq + 1000 WHERE seq >= 50;
         UPDATE records SET seq = seq - 999 WHERE seq >= 1000;
         INSERT INTO records SELECT 50, ts_ns, kind, type, 31337, uid, exe, container, path, daddr, dport, rule, severity, json, hash FROM records WHERE seq = 49;",
        ProblemKind::Inserted,
        50,
    );
}

#[test]
fn reorder_is_detected() {
    let swap = |a: u64, b: u64| {
        format!(
            "UPDATE records SET seq = -1 WHERE seq = {a}; UPDATE records SET seq = {a} WHERE seq = {b}; UPDATE records SET seq = {b} WHERE seq = -1;"
        )
    };
    check(&swap(40, 41), ProblemKind::Reordered, 40);
    check(&swap(60, 64), ProblemKind::Reordered, 60);
}

#[test]
fn checkpoint_and_head_tampering_is_detected() {
    for sql in [
        "UPDATE checkpoints SET seq = seq - 1 WHERE id = 2",
        "DELETE FROM checkpoints WHERE id = 2",
        "UPDATE checkpoints SET reason = 'x' WHERE id = 1",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = fresh(dir.path(), "t.db");
        sqlite3(&path, sql);
        let p = AuditReader::open(&path).unwrap().verify().unwrap().problem.expect(sql);
        assert_eq!(p.kind, ProblemKind::Checkpoint, "{sql}: {p}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path(), "t.db");
    sqlite3(&path, "DELETE FROM head");
    assert_eq!(AuditReader::open(&path).unwrap().verify().unwrap().problem.unwrap().kind, ProblemKind::Head);
}

#[test]
fn untouched_database_verifies_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path(), "t.db");
    let mut out = Vec::new();
    let code = run_cli_with(
        AuditCommand::Verify { db: DbArg { db: path }, json: false, key_file: None, expect_head: None },
        &mut out,
        &|| false,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("OK: 100 records (seq 1..100)"), "{text}");
}
