//! The CLI functions end to end on real database files, including bad input.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use audit::{AuditCommand, AuditStore, DbArg, ExportFormat, FilterArgs, OutputFormat, StatsFormat, run_cli_with};
use clap::Parser;
use common::*;
use serde_json::Value;

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: AuditCommand,
}

fn parse(args: &[&str]) -> Result<AuditCommand, clap::Error> {
    Cli::try_parse_from(std::iter::once("audit").chain(args.iter().copied())).map(|c| c.cmd)
}

fn run(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let cmd = parse(args).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    let code = run_cli_with(cmd, &mut out, &|| false)?;
    Ok((code, String::from_utf8(out).unwrap()))
}

fn populated(dir: &Path) -> PathBuf {
    let path = dir.join("a.db");
    let store = AuditStore::open(&cfg(&path)).unwrap();
    for (i, t) in ["exec", "open", "connect", "rename", "dns", "exit", "unlink", "mystery"].iter().enumerate() {
        record(&store, &ev(i as u64, t));
    }
    assert!(store.record_alert(&alert(1, "read_shadow", "high")));
    store.shutdown();
    path
}

#[test]
fn query_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let db = db.to_str().unwrap();

    let (code, table) = run(&["query", "--db", db]).unwrap();
    assert_eq!(code, 0);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 10, "{table}");
    assert!(lines[0].starts_with("TIME (UTC)"));
    assert!(table.contains("[high] read_shadow: read_shadow fired"), "{table}");
    assert!(table.contains("/tmp/a3 -> /tmp/b3"), "{table}");
    assert!(lines.iter().all(|l| l.chars().count() <= 160), "{table}");

    let (_, json) = run(&["query", "--db", db, "--format", "json", "--type", "exec,open"]).unwrap();
    let arr: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(arr.len(), 2);
    // Same schema as --events-out: the event as it was recorded.
    assert_eq!(arr[0]["process"]["exe"], "/usr/bin/cat");
    assert_eq!(arr[1]["file"]["path"], "/etc/file1");

    let (_, empty) = run(&["query", "--db", db, "--format", "json", "--pid", "999999"]).unwrap();
    assert_eq!(serde_json::from_str::<Vec<Value>>(&empty).unwrap().len(), 0);

    let (_, jsonl) = run(&["query", "--db", db, "--format", "jsonl", "--severity", "medium"]).unwrap();
    let v: Value = serde_json::from_str(jsonl.trim()).unwrap();
    assert_eq!(v["rule"], "read_shadow");

    let (_, csv) = run(&["query", "--db", db, "--format", "csv", "--port", "443", "--since", "1h"]).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert!(rows[0].starts_with("seq,time,type,pid"));
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[1].contains(",connect,") && rows[1].contains("\"{\"\"host"), "{csv}");

    let (_, limited) = run(&["query", "--db", db, "--format", "jsonl", "--limit", "2"]).unwrap();
    assert_eq!(limited.lines().count(), 2);
    let (_, globbed) =
        run(&["query", "--db", db, "--format", "jsonl", "--exe", "/usr/local/*", "--path", "/etc/*"]).unwrap();
    // curl (odd i) opening /etc/file1, and the alert about that same open.
    assert_eq!(globbed.lines().count(), 2, "{globbed}");
}

#[test]
fn stats_export_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let d = db.to_str().unwrap();

    let (_, stats) = run(&["stats", "--db", d]).unwrap();
    assert!(stats.contains("records      9 (seq 1..9)"), "{stats}");
    assert!(stats.contains("read_shadow") && stats.contains("high"), "{stats}");
    let (_, sj) = run(&["stats", "--db", d, "--format", "json"]).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&sj).unwrap()["records"], 9);

    let (_, jsonl) = run(&["export", "--db", d, "--since", "7d"]).unwrap();
    assert_eq!(jsonl.lines().count(), 9);
    let (_, ocsf) = run(&["export", "--db", d, "--format", "ocsf"]).unwrap();
    let classes: Vec<(u64, u64)> = ocsf
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["class_uid"].as_u64().unwrap(), v["activity_id"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        classes,
        vec![(1007, 1), (1001, 14), (4001, 1), (1001, 5), (4003, 1), (1007, 2), (1001, 4), (0, 99), (2004, 1)]
    );
    let finding: Value = serde_json::from_str(ocsf.lines().last().unwrap()).unwrap();
    assert_eq!(finding["severity_id"], 4);
    assert_eq!(finding["finding_info"]["analytic"]["name"], "read_shadow");
    assert_eq!(finding["finding_info"]["attacks"][0]["technique"]["uid"], "T1003.008");
    let net: Value = serde_json::from_str(ocsf.lines().nth(2).unwrap()).unwrap();
    assert_eq!(net["dst_endpoint"]["port"], 443);
    assert_eq!(net["actor"]["process"]["user"]["uid"], "2");

    let out = dir.path().join("export.jsonl");
    run(&["export", "--db", d, "--output", out.to_str().unwrap()]).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 9);

    let (_, tail) = run(&["tail", "--db", d, "-n", "3", "--format", "jsonl"]).unwrap();
    assert_eq!(tail.lines().count(), 3);
    assert!(tail.lines().last().unwrap().contains("read_shadow"));
}

#[test]
fn tail_follow_sees_new_records_while_the_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let store = AuditStore::open(&cfg(&db)).unwrap();
    let stop = AtomicBool::new(false);
    let mut out = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(400));
            for i in 0..5 {
                record(&store, &ev(100 + i, "connect"));
            }
            store.flush().unwrap();
            std::thread::sleep(Duration::from_millis(800));
            stop.store(true, Ordering::Relaxed);
        });
        let cmd = AuditCommand::Tail {
            db: DbArg { db: db.clone() },
            filter: FilterArgs { types: vec!["connect".into()], ..Default::default() },
            lines: 1,
            follow: true,
            format: OutputFormat::Jsonl,
        };
        let t = Instant::now();
        assert_eq!(run_cli_with(cmd, &mut out, &|| stop.load(Ordering::Relaxed)).unwrap(), 0);
        assert!(t.elapsed() < Duration::from_secs(10));
    });
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let db = populated(dir.path());
    let d = db.to_str().unwrap();
    let err = |args: &[&str]| run(args).map(|(c, o)| format!("unexpected success {c}: {o}")).unwrap_err().to_string();

    // Unknown flag values are rejected by the parser.
    assert!(err(&["query", "--db", d, "--format", "xml"]).contains("xml"));
    assert!(err(&["query", "--db", d, "--severity", "urgent"]).contains("urgent"));
    assert!(err(&["query", "--db", d, "--port", "70000"]).contains("70000"));
    // Unparseable or inconsistent times.
    let e = err(&["query", "--db", d, "--since", "yesterday"]);
    assert!(e.contains("yesterday") && e.contains("RFC 3339"), "{e}");
    assert!(err(&["query", "--db", d, "--since", "1h", "--until", "2h"]).contains("not before"));
    assert!(err(&["query", "--db", d, "--type", "Exec;drop"]).contains("invalid --type"));
    assert!(err(&["tail", "--db", d, "--follow", "--format", "json"]).contains("jsonl"));

    // Missing database.
    let missing = dir.path().join("nope.db");
    let e = err(&["verify", "--db", missing.to_str().unwrap()]);
    assert!(e.contains("does not exist"), "{e}");
    assert!(!missing.exists(), "a reader must not create the database");

    // Corrupt database.
    let corrupt = dir.path().join("corrupt.db");
    std::fs::write(&corrupt, vec![0x5a; 8192]).unwrap();
    let e = err(&["stats", "--db", corrupt.to_str().unwrap()]);
    assert!(e.contains("corrupt"), "{e}");
    let truncated = dir.path().join("trunc.db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len().min(4096) + 100]).unwrap();
    let _ = run(&["verify", "--db", truncated.to_str().unwrap()]); // error or failure, but no panic

    // A SQLite file that is not ours, and a newer schema.
    let foreign = dir.path().join("foreign.db");
    sqlite3(&foreign, "CREATE TABLE t(x);");
    assert!(err(&["query", "--db", foreign.to_str().unwrap()]).contains("not a sensor audit database"));
    sqlite3(&db, "PRAGMA user_version = 99;");
    let e = err(&["query", "--db", d]);
    assert!(e.contains("schema version 99") && e.contains("newer"), "{e}");
    let e = AuditStore::open(&cfg(&db)).err().expect("writer refuses a newer schema").to_string();
    assert!(e.contains("newer"), "{e}");
}

#[test]
fn default_db_path_and_subcommand_shape() {
    match parse(&["stats"]).unwrap() {
        AuditCommand::Stats { db, format } => {
            assert_eq!(db.db, PathBuf::from("/var/lib/sensor/audit.db"));
            assert_eq!(format, StatsFormat::Text);
        }
        _ => unreachable!(),
    }
    assert!(matches!(
        parse(&["export", "--format", "ocsf", "--since", "2026-11-25T00:00:00Z"]).unwrap(),
        AuditCommand::Export { format: ExportFormat::Ocsf, .. }
    ));
}
