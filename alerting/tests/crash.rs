//! kill -9 with deliveries pending, then restart on the same outbox: nothing
//! is lost. The child is this test binary re-executed with an env var.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerting::{Alerter, AlertingConfig, DedupConfig, RetryConfig, Severity, SinkConfig, SinkType};
use common::*;

const CHILD_ENV: &str = "ALERTING_CRASH_CHILD_OUTBOX";
const UNIQUE: usize = 300;
const DUPES: usize = 50;

fn config(outbox: std::path::PathBuf) -> AlertingConfig {
    AlertingConfig {
        outbox,
        dedup: DedupConfig {
            // Long window: the aggregation is still open when the child dies.
            window: Duration::from_secs(600),
            key: vec!["rule".into(), "event.process.exe".into()],
            max_keys: 1000,
        },
        sinks: vec![SinkConfig {
            kind: SinkType::Webhook,
            name: "hook".into(),
            url_env: Some("ALERTING_TEST_URL".into()),
            hmac_secret_env: Some("ALERTING_TEST_HMAC".into()),
            retry: RetryConfig {
                max_attempts: 1000,
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
            },
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Runs only inside the child: submits to a dead sink, reports, then waits
/// to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(outbox) = std::env::var(CHILD_ENV) else {
        return; // normal test run: nothing to do
    };
    let alerter = Alerter::start(config(outbox.into())).unwrap();
    let mut ids = Vec::new();
    for i in 0..UNIQUE {
        ids.push(alerter.submit(sample("crash_rule", Severity::High, &format!("/bin/u{i}"))).unwrap());
    }
    for _ in 0..DUPES {
        alerter.submit(sample("crash_rule", Severity::High, "/bin/u0")).unwrap();
    }
    // Wait until every submitted alert is committed (or aggregated).
    assert!(
        wait_until(Duration::from_secs(10), || {
            let s = alerter.stats();
            s.written as usize == UNIQUE && s.deduplicated as usize == DUPES
        })
        .await
    );
    // Give the aggregation's per-batch persistence a moment, then report.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in &ids {
        println!("ID {id}");
    }
    println!("READY");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_pending_deliveries_then_restart_delivers_everything() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox.db");
    let dead = dead_port();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &outbox)
        .env("ALERTING_TEST_URL", format!("http://127.0.0.1:{dead}/hook"))
        .env("ALERTING_TEST_HMAC", "child-key")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ids = Vec::new();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // libtest may have printed "test crash_child ... " on this line.
            if let Some((_, id)) = line.split_once("ID ") {
                ids.push(id.trim().to_string());
            }
            if line.contains("READY") {
                return (ids, true);
            }
        }
        (ids, false)
    });
    let (got_ids, ready) = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    assert!(ready, "child did not get ready");
    ids.extend(got_ids);
    assert_eq!(ids.len(), UNIQUE);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));

    // Restart on the same outbox with a live receiver.
    let log = Arc::new(Mutex::new(Vec::new()));
    let srv = HttpServer::start(scripted(vec![], log.clone())).await;
    let mut cfg = config(outbox);
    cfg.sinks[0].url_env = None;
    cfg.sinks[0].url = Some(srv.url("/hook"));
    cfg.sinks[0].hmac_secret_env = None;
    let alerter = Alerter::start(cfg).unwrap();
    let want = UNIQUE + 1; // every unique alert + the recovered aggregation
    let ok = wait_until(Duration::from_secs(15), || {
        let l = log.lock().unwrap();
        let distinct: std::collections::HashSet<_> =
            l.iter().map(|(r, _)| r.header("idempotency-key").unwrap().to_string()).collect();
        distinct.len() >= want
    })
    .await;
    assert!(ok, "delivered {} of {want}: {:?}", log.lock().unwrap().len(), alerter.stats());
    let l = log.lock().unwrap().clone();
    let mut by_id: HashMap<String, serde_json::Value> = HashMap::new();
    for (r, _) in l.iter() {
        by_id.insert(r.header("idempotency-key").unwrap().to_string(), r.json());
    }
    for id in &ids {
        assert!(by_id.contains_key(id), "alert {id} lost");
    }
    // The open aggregation survived the kill with its count.
    let agg: Vec<_> = by_id.values().filter(|v| v["first_seen"].is_string()).collect();
    assert_eq!(agg.len(), 1, "{agg:?}");
    assert_eq!(agg[0]["count"].as_u64().unwrap() as usize, DUPES);
    assert!(agg[0]["first_seen"].is_string() && agg[0]["last_seen"].is_string());
    let total: u64 = by_id.values().map(|v| v["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(total as usize, UNIQUE + DUPES, "every occurrence accounted for");
    let report = alerter.shutdown(Duration::from_secs(2)).await;
    assert_eq!(report.pending, 0);
}
