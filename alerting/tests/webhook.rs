//! Webhook delivery against a real HTTP server on 127.0.0.1 that fails first.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alerting::{
    Alerter, AlertingConfig, AlertsCommand, DedupConfig, RetryConfig, Severity, SinkConfig, SinkHealthEvent, SinkType,
    sign,
};
use common::*;

fn webhook(name: &str, url: String, secret_file: Option<std::path::PathBuf>) -> SinkConfig {
    SinkConfig {
        kind: SinkType::Webhook,
        name: name.into(),
        url: Some(url),
        headers: [("X-Team".to_string(), "secops".to_string())].into(),
        hmac_secret_file: secret_file,
        timeout: Some(Duration::from_secs(2)),
        retry: RetryConfig {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
        },
        ..Default::default()
    }
}

fn base(dir: &tempfile::TempDir, sinks: Vec<SinkConfig>) -> AlertingConfig {
    AlertingConfig {
        outbox: dir.path().join("outbox.db"),
        dedup: DedupConfig { window: Duration::ZERO, ..Default::default() },
        sinks,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_server_then_everything_arrives_signed_with_stable_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("hmac.key");
    std::fs::write(&key_path, "s3cret-key\n").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    // 500, then 429 Retry-After: 1, then a dropped connection, then 200s.
    let srv = HttpServer::start(scripted(vec![Reply::Status(500), Reply::TooMany(1), Reply::Close], log.clone())).await;
    let mut sink = webhook("hook", srv.url("/alerts?token=TOPSECRET"), Some(key_path));
    sink.concurrency = Some(1); // deterministic order for the Retry-After check
    let alerter = Alerter::start(base(&dir, vec![sink])).unwrap();

    let mut ids = Vec::new();
    for i in 0..20 {
        let a = sample("exec_shell", Severity::High, &format!("/bin/p{i}"));
        ids.push(alerter.submit(a).unwrap());
    }
    let want: HashSet<String> = ids.iter().cloned().collect();
    let ok = wait_until(Duration::from_secs(15), || {
        let got: HashSet<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| matches!(r, Reply::Status(200)))
            .filter_map(|(q, _)| q.header("idempotency-key").map(String::from))
            .collect();
        got == want
    })
    .await;
    assert!(ok, "not all alerts delivered: {:?}", alerter.stats());

    let log = log.lock().unwrap().clone();
    // Every request: signature verifies, key header == body id, custom header.
    for (req, _) in &log {
        let sig = req.header("x-sensor-signature").expect("signature header");
        assert_eq!(sig, sign(b"s3cret-key", &req.body));
        let body = req.json();
        assert_eq!(req.header("idempotency-key"), body["id"].as_str());
        assert_eq!(req.header("x-team"), Some("secops"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert!(want.contains(body["id"].as_str().unwrap()));
    }
    // The failed attempts were for the first alert and were retried with the
    // same key; it was finally accepted once.
    let first_keys: Vec<&str> = log[..4].iter().map(|(r, _)| r.header("idempotency-key").unwrap()).collect();
    assert!(first_keys.iter().all(|k| *k == ids[0]), "{first_keys:?}");
    // Retry-After: 1 honoured (next request >= ~1s after the 429).
    let gap = log[2].0.at.duration_since(log[1].0.at);
    assert!(gap >= Duration::from_millis(950), "retry after 429 came after {gap:?}");
    // Each alert accepted exactly once here (no spurious redelivery).
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for (r, rep) in &log {
        if matches!(rep, Reply::Status(200)) {
            *accepted.entry(r.header("idempotency-key").unwrap().to_string()).or_default() += 1;
        }
    }
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");

    let st = alerter.stats();
    assert_eq!(st.sinks[0].delivered, 20);
    assert_eq!(st.sinks[0].retried, 3);
    assert_eq!(st.sinks[0].dead_lettered, 0);
    let report = alerter.shutdown(Duration::from_secs(2)).await;
    assert_eq!(report.pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_dead_letter_and_cli_retry_redelivers_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let reject = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let r2 = reject.clone();
    let l2 = log.clone();
    let srv = HttpServer::start(Arc::new(move |req: &Request| {
        let reply = if r2.load(std::sync::atomic::Ordering::SeqCst) { Reply::Status(400) } else { Reply::Status(204) };
        l2.lock().unwrap().push((req.clone(), reply.clone()));
        reply
    }))
    .await;
    let cfg = base(&dir, vec![webhook("hook", srv.url("/x"), None)]);
    let outbox = cfg.outbox.clone();
    let alerter = Alerter::start(cfg).unwrap();
    let id = alerter.submit(sample("r", Severity::Critical, "/bin/sh")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || alerter.stats().sinks[0].dead_lettered == 1).await);
    // 400 is permanent: exactly one attempt.
    assert_eq!(log.lock().unwrap().len(), 1);

    // Stats move first; the dead-letter row is committed with the writer's
    // next group commit (<= 10 ms later).
    let list_failed = || {
        let mut out = Vec::new();
        let code = alerting::run_cli_to(
            AlertsCommand::List {
                pending: false,
                failed: true,
                outbox: outbox.clone(),
                format: alerting::ListFormat::Json,
                limit: 10,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(code, 0);
        String::from_utf8(out).unwrap()
    };
    assert!(wait_until(Duration::from_secs(2), || list_failed().contains(&id)).await, "{}", list_failed());
    let text = list_failed();
    assert!(text.contains(&id) && text.contains("HTTP 400"), "{text}");

    reject.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut out = Vec::new();
    let code = alerting::run_cli_to(
        AlertsCommand::Retry { id: Some(id.clone()), all: false, outbox: outbox.clone() },
        &mut out,
    )
    .unwrap();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    // The running alerter notices the external change and redelivers.
    assert!(
        wait_until(Duration::from_secs(5), || alerter.stats().sinks[0].delivered == 1).await,
        "{:?}",
        alerter.stats()
    );
    let last = log.lock().unwrap().last().unwrap().0.clone();
    assert_eq!(last.header("idempotency-key"), Some(id.as_str()));
    let mut out = Vec::new();
    let code =
        alerting::run_cli_to(AlertsCommand::Retry { id: Some("no-such-id".into()), all: false, outbox }, &mut out)
            .unwrap();
    assert_eq!(code, 1);
    alerter.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_exhausted_dead_letters_and_errors_hide_the_url_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let mut s = webhook("dead", format!("http://127.0.0.1:{port}/hook?token=TOPSECRET"), None);
    s.retry.max_attempts = 3;
    s.retry.initial_backoff = Duration::from_millis(10);
    s.retry.max_backoff = Duration::from_millis(20);
    let cfg = base(&dir, vec![s]);
    let outbox = cfg.outbox.clone();
    let alerter = Alerter::start(cfg).unwrap();
    let mut health = alerter.subscribe_health();
    alerter.submit(sample("r", Severity::High, "/x")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || alerter.stats().sinks[0].dead_lettered == 1).await);
    let st = alerter.stats();
    assert_eq!(st.sinks[0].retried, 2);
    let ev = tokio::time::timeout(Duration::from_secs(1), health.recv()).await.unwrap().unwrap();
    match &ev {
        SinkHealthEvent::SinkDegraded { sink, .. } => assert_eq!(sink, "dead"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!format!("{ev:?}").contains("TOPSECRET"));
    alerter.shutdown(Duration::from_secs(1)).await;
    let mut out = Vec::new();
    alerting::run_cli_to(
        AlertsCommand::List { pending: false, failed: false, outbox, format: alerting::ListFormat::Table, limit: 10 },
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("dead") && !text.contains("TOPSECRET"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_spills_to_outbox_reports_degraded_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let s2 = slow.clone();
    let srv = HttpServer::start(Arc::new(move |req: &Request| {
        let reply = if s2.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::Slow(Duration::from_millis(100))
        } else {
            Reply::Status(200)
        };
        l2.lock().unwrap().push((req.clone(), reply.clone()));
        reply
    }))
    .await;
    let mut s = webhook("slow", srv.url("/"), None);
    s.queue_capacity = Some(5);
    s.concurrency = Some(1);
    let alerter = Alerter::start(base(&dir, vec![s])).unwrap();
    let mut health = alerter.subscribe_health();
    let t = Instant::now();
    let mut ids = HashSet::new();
    for i in 0..200 {
        ids.insert(alerter.submit(sample("r", Severity::High, &format!("/p{i}"))).unwrap());
    }
    assert!(t.elapsed() < Duration::from_millis(100), "submit blocked");
    let ev = tokio::time::timeout(Duration::from_secs(3), health.recv()).await.unwrap().unwrap();
    assert!(
        matches!(ev, SinkHealthEvent::SinkDegraded { reason: alerting::DegradedReason::QueueOverflow { .. }, .. }),
        "{ev:?}"
    );
    assert!(alerter.stats().sinks[0].overflow > 0);
    assert!(alerter.stats().sinks[0].queued <= 5);
    slow.store(false, std::sync::atomic::Ordering::SeqCst);
    let ok = wait_until(Duration::from_secs(10), || alerter.stats().sinks[0].delivered == 200).await;
    assert!(ok, "{:?}", alerter.stats());
    let got: HashSet<String> =
        log.lock().unwrap().iter().map(|(r, _)| r.header("idempotency-key").unwrap().to_string()).collect();
    assert_eq!(got, ids);
    let ev = tokio::time::timeout(Duration::from_secs(2), health.recv()).await.unwrap().unwrap();
    assert_eq!(ev, SinkHealthEvent::SinkRecovered { sink: "slow".into() });
    alerter.shutdown(Duration::from_secs(1)).await;
}
