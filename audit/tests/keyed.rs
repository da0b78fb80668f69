//! HMAC-keyed chain and external head anchors, on real files through the CLI.

mod common;

use std::path::{Path, PathBuf};

use audit::{AuditCommand, AuditReader, AuditStore, ProblemKind, run_cli_with};
use clap::Parser;
use common::*;

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AuditCommand,
}

fn run(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let cmd = Cli::try_parse_from(std::iter::once("audit").chain(args.iter().copied()))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .cmd;
    let mut out = Vec::new();
    let code = run_cli_with(cmd, &mut out, &|| false)?;
    Ok((code, String::from_utf8(out).unwrap()))
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let (code, out) = run(&["keygen", p.to_str().unwrap()]).unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("32-byte key") && out.contains("key id"), "{out}");
    p
}

/// 100 events (checkpoints every 25 + shutdown), keyed if `key` is given; `edit` changes event 10.
fn trail(path: &Path, key: Option<&Path>, edit: bool) {
    let mut c = cfg(path);
    c.key_file = key.map(Path::to_path_buf);
    let store = AuditStore::open(&c).unwrap();
    for i in 0..100 {
        let mut e = ev(i, if i % 2 == 0 { "exec" } else { "open" });
        if edit && i == 9 {
            e["process"]["exe"] = serde_json::json!("/usr/bin/innocent");
        }
        record(&store, &e);
        if i % 10 == 9 {
            store.flush().unwrap();
        }
    }
    store.shutdown();
}

fn head_of(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("head ")).expect("head line").to_string()
}

#[test]
fn keyed_trail_verifies_only_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "audit.key");
    let other = keygen(dir.path(), "other.key");
    let db = dir.path().join("k.db");
    trail(&db, Some(&key), false);
    let d = db.to_str().unwrap();

    let (code, out) = run(&["verify", "--db", d, "--key-file", key.to_str().unwrap()]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 100 records (seq 1..100)") && out.contains("keyed chain (HMAC-SHA256"), "{out}");
    let head = head_of(&out);
    assert!(head.starts_with("100:") && head.len() == 4 + 64, "{head}");
    // The key never appears in any output.
    let raw = std::fs::read(&key).unwrap();
    assert!(!out.contains(&hex::encode(&raw)));

    // Without the key: structure only, said plainly, exit 3.
    let (code, out) = run(&["verify", "--db", d]).unwrap();
    assert_eq!(code, audit::EXIT_UNVERIFIED, "{out}");
    assert!(out.starts_with("UNVERIFIED:") && out.contains("--key-file") && out.contains("structure"), "{out}");

    // A wrong key: exit 2 with a clear message.
    let (code, out) = run(&["verify", "--db", d, "--key-file", other.to_str().unwrap()]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("wrong key"), "{out}");

    // A missing key file is an error naming the path.
    let e = run(&["verify", "--db", d, "--key-file", "/nonexistent/audit.key"]).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/audit.key") && e.contains("does not exist"), "{e}");

    // The writer refuses to continue the keyed trail without its key or with another one.
    let e = AuditStore::open(&cfg(&db)).err().unwrap().to_string();
    assert!(e.contains("keyed") && e.contains("key_file"), "{e}");
    let mut c = cfg(&db);
    c.key_file = Some(other.clone());
    let e = AuditStore::open(&c).err().unwrap().to_string();
    assert!(e.contains("another key"), "{e}");
    // ...and a non-empty unkeyed trail cannot silently become keyed.
    let plain = dir.path().join("plain.db");
    trail(&plain, None, false);
    let mut c = cfg(&plain);
    c.key_file = Some(key.clone());
    let e = AuditStore::open(&c).err().unwrap().to_string();
    assert!(e.contains("unkeyed chain"), "{e}");
    let (code, out) = run(&["verify", "--db", plain.to_str().unwrap(), "--key-file", key.to_str().unwrap()]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("not keyed"), "{out}");

    // Reopening with the right key continues the chain.
    let mut c = cfg(&db);
    c.key_file = Some(key.clone());
    let store = AuditStore::open(&c).unwrap();
    record(&store, &ev(500, "exec"));
    store.shutdown();
    let rep = AuditReader::open(&db)
        .unwrap()
        .verify_with(&audit::VerifyOptions { key_file: Some(key), expect_head: Some(head.parse().unwrap()) })
        .unwrap();
    assert!(rep.ok() && rep.hashes_checked && rep.anchor_checked.is_some(), "{rep:?}");
}

#[test]
fn rewrite_with_recomputed_unkeyed_hashes_is_caught_when_keyed() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "audit.key");
    let db = dir.path().join("k.db");
    trail(&db, Some(&key), false);
    // The attacker can write the file but has no key: they build a forged trail
    // with a valid unkeyed chain and swap its tables in.
    let forged = dir.path().join("forged.db");
    trail(&forged, None, true);
    let swap = format!(
        "ATTACH '{}' AS f; DELETE FROM records; INSERT INTO records SELECT * FROM f.records;
         DELETE FROM checkpoints; INSERT INTO checkpoints SELECT * FROM f.checkpoints;
         DELETE FROM head; INSERT INTO head SELECT * FROM f.head;",
        forged.display()
    );
    sqlite3(&db, &swap);
    let opts = audit::VerifyOptions { key_file: Some(key.clone()), expect_head: None };
    let rep = AuditReader::open(&db).unwrap().verify_with(&opts).unwrap();
    let p = rep.problem.expect("forged chain accepted");
    assert_eq!(p.kind, ProblemKind::Checkpoint, "{p}");
    // Checkpoints are not the only line of defence: with them left intact the records fail.
    let db2 = dir.path().join("k2.db");
    trail(&db2, Some(&key), false);
    sqlite3(
        &db2,
        &format!(
            "ATTACH '{}' AS f; DELETE FROM records; INSERT INTO records SELECT * FROM f.records;",
            forged.display()
        ),
    );
    let p = AuditReader::open(&db2).unwrap().verify_with(&opts).unwrap().problem.expect("forged records accepted");
    assert_eq!((p.kind, p.seq), (ProblemKind::Modified, Some(1)), "{p}");
    // Relabelling the trail as unkeyed does not help either: the key holder is told.
    sqlite3(&db, "UPDATE meta SET value = 'sha256' WHERE key = 'chain'; DELETE FROM meta WHERE key = 'key_id';");
    let (code, out) = run(&["verify", "--db", db.to_str().unwrap(), "--key-file", key.to_str().unwrap()]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("not keyed"), "{out}");
}

#[test]
fn structural_check_without_the_key_still_catches_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "audit.key");
    let db = dir.path().join("k.db");
    trail(&db, Some(&key), false);
    sqlite3(&db, "DELETE FROM records WHERE seq = 50");
    let (code, out) = run(&["verify", "--db", db.to_str().unwrap()]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("Deleted at record seq 50"), "{out}");
}

#[test]
fn expect_head_catches_truncation_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    trail(&db, None, false);
    let d = db.to_str().unwrap();
    let (code, out) = run(&["verify", "--db", d]).unwrap();
    assert_eq!(code, 0, "{out}");
    let head = head_of(&out);
    let (code, out) = run(&["verify", "--db", d, "--expect-head", &head]).unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("expected head {head} is in the chain")), "{out}");

    // Truncate the tail and cover the tracks: head rewound, the later checkpoint removed.
    sqlite3(
        &db,
        "DELETE FROM records WHERE seq > 90; DELETE FROM checkpoints WHERE seq > 90;
         UPDATE head SET seq = 90, hash = (SELECT hash FROM records WHERE seq = 90);",
    );
    let (code, out) = run(&["verify", "--db", d]).unwrap();
    assert_eq!(code, 0, "without an anchor a clean truncation looks valid: {out}");
    let (code, out) = run(&["verify", "--db", d, "--expect-head", &head]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("truncated"), "{out}");

    // A rewritten chain (valid, recomputed) no longer contains the recorded head.
    let forged = dir.path().join("forged.db");
    trail(&forged, None, true);
    let fd = forged.to_str().unwrap();
    let (code, out) = run(&["verify", "--db", fd]).unwrap();
    assert_eq!(code, 0, "{out}");
    let at50 = format!("50:{}", sqlite3(&db, "SELECT hex(hash) FROM records WHERE seq = 50").trim().to_lowercase());
    let (code, out) = run(&["verify", "--db", fd, "--expect-head", &at50]).unwrap();
    assert_eq!(code, audit::EXIT_TAMPERED, "{out}");
    assert!(out.contains("Modified at record seq 50") && out.contains("rewritten"), "{out}");

    let e = run(&["verify", "--db", d, "--expect-head", "12:nothex"]).unwrap_err().to_string();
    assert!(e.contains("SEQ:HEX"), "{e}");
}
