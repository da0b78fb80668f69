//! kill -9 of a real writer process mid-burst, then reopen and verify.
//!
//! The test binary re-executes itself with AUDIT_CRASH_CHILD_DB set; in that
//! mode the test body is the child: it writes numbered events until killed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use audit::{AuditReader, AuditStore, HumanDuration, KIND_EVENT, QueryFilter};
use common::*;

const CHILD_ENV: &str = "AUDIT_CRASH_CHILD_DB";

fn child(db: &str) -> ! {
    let mut c = cfg(std::path::Path::new(db));
    c.batch_rows = 2_000;
    c.batch_interval = HumanDuration(Duration::from_millis(50));
    let store = AuditStore::open(&c).expect("child open");
    let out = std::io::stdout();
    let mut n: u64 = 0;
    loop {
        record(&store, &ev(n, "open"));
        n += 1;
        if n.is_multiple_of(250) {
            // `written` only grows after a commit, so it is a lower bound of what is durable.
            let mut o = out.lock();
            let _ = writeln!(o, "written {}", store.stats().written);
            let _ = o.flush();
        }
    }
}

#[test]
fn kill9_during_write_burst_loses_at_most_the_open_batch() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    for round in 0..3 {
        let mut ch = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill9_during_write_burst_loses_at_most_the_open_batch",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = ch.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("written ").and_then(|n| n.parse::<u64>().ok()) {
                    let _ = tx.send(n);
                }
            }
        });
        // Let it get well into the burst, then SIGKILL at an arbitrary point.
        let t = Instant::now();
        let mut last = 0;
        while last < 10_000 {
            assert!(t.elapsed() < Duration::from_secs(120), "child made no progress");
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(100)) {
                last = n;
            }
        }
        std::thread::sleep(Duration::from_millis(37 * (round + 1)));
        while let Ok(n) = rx.try_recv() {
            last = n;
        }
        ch.kill().unwrap(); // SIGKILL
        ch.wait().unwrap();
        while let Ok(n) = rx.try_recv() {
            last = n;
        }

        let r = AuditReader::open(&db).expect("database opens after kill -9");
        let rep = r.verify().unwrap();
        assert!(rep.ok(), "round {round}: {:?}", rep.problem);
        // This round's events form a gap-free prefix of what the child sent.
        let ns: Vec<u64> = r
            .query(&QueryFilter::default(), 0)
            .unwrap()
            .into_iter()
            .filter(|r| r.kind == KIND_EVENT)
            .map(|r| serde_json::from_str::<serde_json::Value>(&r.json).unwrap()["n"].as_u64().unwrap())
            .collect();
        let this_round: Vec<u64> = {
            // Earlier rounds also started at n = 0; take the suffix after the last reset.
            let start = ns.iter().rposition(|&n| n == 0).unwrap();
            ns[start..].to_vec()
        };
        let committed = this_round.len() as u64;
        assert!(this_round.iter().enumerate().all(|(i, &n)| i as u64 == n), "round {round}: gap in committed events");
        assert!(committed >= last, "round {round}: lost committed rows ({committed} < {last})");
        eprintln!("round {round}: child reported {last} committed, {committed} survived the kill");
    }
    // And the store keeps appending to the recovered chain.
    let store = AuditStore::open(&cfg(&db)).unwrap();
    record(&store, &ev(1, "exec"));
    store.shutdown();
    assert!(AuditReader::open(&db).unwrap().verify().unwrap().ok());
}
