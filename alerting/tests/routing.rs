//! Routing, dedup/aggregation windows, rate limits, file rotation, OCSF and
//! config parsing/validation, observed through real files.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use alerting::{
    Alert, Alerter, AlertingConfig, DedupConfig, RateLimitConfig, RecordFormat, Severity, SinkConfig, SinkType,
};
use common::*;

fn file_sink(name: &str, path: &Path) -> SinkConfig {
    SinkConfig { kind: SinkType::File, name: name.into(), path: Some(path.to_path_buf()), ..Default::default() }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn no_dedup() -> DedupConfig {
    DedupConfig { window: Duration::ZERO, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_severity_and_rule_globs() {
    let dir = tempfile::tempdir().unwrap();
    let (p_high, p_net) = (dir.path().join("high.jsonl"), dir.path().join("net.jsonl"));
    let mut high = file_sink("high", &p_high);
    high.min_severity = Severity::High;
    let mut net = file_sink("net", &p_net);
    net.rules_include = vec!["net_*".into()];
    net.rules_exclude = vec!["net_noisy*".into()];
    let alerter = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: no_dedup(),
        sinks: vec![high, net],
        ..Default::default()
    })
    .unwrap();
    for (rule, sev) in [
        ("exec_a", Severity::Low),
        ("exec_b", Severity::High),
        ("exec_c", Severity::Critical),
        ("net_conn", Severity::Info),
        ("net_noisy_dns", Severity::Critical),
    ] {
        alerter.submit(sample(rule, sev, "/x")).unwrap();
    }
    let report = alerter.shutdown(Duration::from_secs(2)).await;
    assert_eq!(report.pending, 0);
    let rules = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = lines(p).iter().map(|l| l["rule"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(rules(&p_high), vec!["exec_b", "exec_c", "net_noisy_dns"]);
    assert_eq!(rules(&p_net), vec!["net_conn"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_window_aggregates_with_count_and_first_last_times() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.jsonl");
    let window = Duration::from_millis(400);
    let alerter = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: DedupConfig { window, key: vec!["rule".into(), "event.process.exe".into()], max_keys: 100 },
        sinks: vec![file_sink("f", &p)],
        ..Default::default()
    })
    .unwrap();
    let t0 = Instant::now();
    let mut first_ts = None;
    let mut last_ts = None;
    for i in 0..10 {
        let mut a = sample("dup", Severity::Medium, "/bin/sh");
        a.ts = chrono::Utc::now();
        if i == 1 {
            first_ts = Some(a.ts);
        }
        last_ts = Some(a.ts);
        alerter.submit(a).unwrap();
    }
    // A different exe is a different key: its own notification.
    alerter.submit(sample("dup", Severity::Medium, "/bin/other")).unwrap();
    // Leading edge is immediate.
    assert!(wait_until(Duration::from_millis(300), || lines(&p).len() == 2).await);
    assert!(t0.elapsed() < window, "first notifications must not wait for the window");
    // Then one summary when the window ends.
    assert!(wait_until(Duration::from_secs(2), || lines(&p).len() == 3).await);
    assert!(t0.elapsed() >= window);
    let l = lines(&p);
    let summary = l.iter().find(|v| v.get("first_seen").is_some()).unwrap();
    assert_eq!(summary["count"], 9);
    let f: Alert = serde_json::from_value(summary.clone()).unwrap();
    assert_eq!(f.first_seen, first_ts);
    assert_eq!(f.last_seen, last_ts);
    // Distinct idempotency keys for the summary and the first alert.
    let ids: std::collections::HashSet<_> = l.iter().map(|v| v["id"].clone()).collect();
    assert_eq!(ids.len(), 3);

    // The key stays hot one more window: an occurrence now is folded...
    alerter.submit(sample("dup", Severity::High, "/bin/sh")).unwrap();
    tokio::time::sleep(window * 2 + Duration::from_millis(200)).await;
    let l = lines(&p);
    assert_eq!(l.len(), 4, "{l:#?}");
    assert_eq!(l[3]["count"], 1);
    assert_eq!(l[3]["severity"], "high");
    // ...and after a quiet window it is forgotten: next one is immediate.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    alerter.submit(sample("dup", Severity::Medium, "/bin/sh")).unwrap();
    assert!(wait_until(Duration::from_millis(300), || lines(&p).len() == 5).await);
    assert!(lines(&p)[4].get("first_seen").is_none());
    assert_eq!(lines(&p)[4]["count"], 1);
    let st = alerter.stats();
    assert_eq!(st.deduplicated, 10);
    assert_eq!(st.aggregated, 2);
    alerter.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_holds_back_counts_and_summarises() {
    let dir = tempfile::tempdir().unwrap();
    let (p_lim, p_all) = (dir.path().join("lim.jsonl"), dir.path().join("all.jsonl"));
    let mut lim = file_sink("lim", &p_lim);
    lim.rate_limit = Some(RateLimitConfig { max: 3, window: Duration::from_millis(500) });
    let alerter = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: no_dedup(),
        sinks: vec![lim, file_sink("all", &p_all)],
        ..Default::default()
    })
    .unwrap();
    let t0 = Instant::now();
    for i in 0..10 {
        let rule = if i % 2 == 0 { "even" } else { "odd" };
        alerter.submit(sample(rule, Severity::High, &format!("/p{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(2), || lines(&p_all).len() == 10).await);
    assert!(wait_until(Duration::from_secs(2), || lines(&p_lim).len() == 3).await);
    assert!(t0.elapsed() < Duration::from_millis(450));
    // Summary after the window, to the limited sink only.
    assert!(wait_until(Duration::from_secs(2), || lines(&p_lim).len() == 4).await);
    assert!(t0.elapsed() >= Duration::from_millis(500));
    let s = &lines(&p_lim)[3];
    assert_eq!(s["rule"], alerting::RATE_LIMIT_RULE);
    assert_eq!(s["count"], 7);
    assert_eq!(s["event"]["held"], 7);
    assert_eq!(s["event"]["sink"], "lim");
    assert_eq!(s["event"]["rules"]["even"].as_u64().unwrap() + s["event"]["rules"]["odd"].as_u64().unwrap(), 7);
    assert_eq!(lines(&p_all).len(), 10);
    let st = alerter.stats();
    assert_eq!(st.sinks[0].rate_limited, 7);
    assert_eq!(st.sinks[0].rate_limit_summaries, 1);
    assert_eq!(st.sinks[0].delivered, 4);
    // A new window admits again.
    alerter.submit(sample("even", Severity::High, "/late")).unwrap();
    assert!(wait_until(Duration::from_secs(1), || lines(&p_lim).len() == 5).await);
    alerter.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sink_rotates_by_size_and_writes_ocsf() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("logs/ocsf.jsonl");
    let mut s = file_sink("ocsf", &p);
    s.format = Some(RecordFormat::Ocsf);
    s.max_bytes = Some(4000);
    s.max_files = Some(50);
    let alerter = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        dedup: no_dedup(),
        sinks: vec![s],
        ..Default::default()
    })
    .unwrap();
    let mut a = sample("exec_shell", Severity::Critical, "/bin/bash");
    a.mitre = vec!["T1059.004".into(), "TA0002".into()];
    a.event["net"] = serde_json::json!({"daddr": "10.1.1.1", "dport": 22});
    for _ in 0..30 {
        alerter.submit(a.clone()).unwrap();
    }
    alerter.shutdown(Duration::from_secs(2)).await;
    let mut all = lines(&p);
    assert!(std::fs::metadata(&p).unwrap().len() <= 4000);
    for n in 1..=50 {
        let r = dir.path().join(format!("logs/ocsf.jsonl.{n}"));
        if r.exists() {
            assert!(std::fs::metadata(&r).unwrap().len() <= 4000);
            all.extend(lines(&r));
        }
    }
    assert!(dir.path().join("logs/ocsf.jsonl.1").exists(), "rotated");
    assert_eq!(all.len(), 30);
    let o = &all[0];
    assert_eq!(o["class_uid"], 2004);
    assert_eq!(o["category_uid"], 2);
    assert_eq!(o["type_uid"], 200401);
    assert_eq!(o["severity_id"], 5);
    assert_eq!(o["finding_info"]["analytic"]["name"], "exec_shell");
    assert_eq!(o["finding_info"]["attacks"][0]["technique"]["uid"], "T1059.004");
    assert_eq!(o["finding_info"]["attacks"][1]["tactic"]["uid"], "TA0002");
    assert_eq!(o["evidences"][0]["process"]["pid"], 4242);
    assert_eq!(o["evidences"][0]["dst_endpoint"]["port"], 22);
    assert!(o["metadata"]["uid"].as_str().unwrap().len() == 36);
}

const FULL_TOML: &str = r#"
[alerting]
outbox = "/tmp/x/outbox.db"
dedup = { window = "30s", key = ["rule", "event.process.exe"] }

[[alerting.sinks]]
type = "webhook"
name = "soc"
url_env = "SOC_URL"
headers = { Authorization = "Bearer abc" }
hmac_secret_file = "/etc/sensor/hmac"
timeout = "5s"
min_severity = "medium"
rules_exclude = ["noisy_*"]
rate_limit = { max = 100, window = "1m" }
retry = { max_attempts = 5, initial_backoff = "200ms", max_backoff = "1m" }

[[alerting.sinks]]
type = "slack"
name = "chat"
url = "https://hooks.slack.com/services/T/B/SECRET"
min_severity = "high"

[[alerting.sinks]]
type = "syslog"
name = "siem"
address = "siem.local:6514"
transport = "tls"
format = "cef"
ca_file = "/etc/ssl/siem.pem"

[[alerting.sinks]]
type = "file"
name = "ocsf"
path = "/var/log/sensor/alerts.ocsf.jsonl"
format = "ocsf"
max_bytes = 1048576

[[alerting.sinks]]
type = "stdout"
name = "console"
"#;

#[derive(serde::Deserialize)]
struct Root {
    alerting: AlertingConfig,
}

#[test]
fn full_toml_parses_and_validates() {
    let r: Root = toml::from_str(FULL_TOML).unwrap();
    let c = r.alerting;
    c.validate().unwrap();
    assert_eq!(c.sinks.len(), 5);
    assert_eq!(c.dedup.window, Duration::from_secs(30));
    assert_eq!(c.sinks[0].rate_limit.unwrap().window, Duration::from_secs(60));
    assert_eq!(c.sinks[0].retry.initial_backoff, Duration::from_millis(200));
    assert_eq!(c.sinks[2].format(), RecordFormat::Cef);
    let d = format!("{c:?}");
    assert!(!d.contains("SECRET") && !d.contains("Bearer"), "{d}");
    // Defaults when the section is empty.
    let r: Root = toml::from_str("[alerting]").unwrap();
    assert_eq!(r.alerting.outbox, Path::new(alerting::config::DEFAULT_OUTBOX));
}

#[test]
fn unknown_fields_are_rejected() {
    let e = toml::from_str::<Root>("[alerting]\nbogus = 1").err().unwrap();
    assert!(e.to_string().contains("bogus"), "{e}");
    let e = toml::from_str::<Root>("[alerting]\n[[alerting.sinks]]\ntype = \"stdout\"\nname = \"x\"\nurll = \"y\"")
        .err()
        .unwrap();
    assert!(e.to_string().contains("urll"), "{e}");
}

#[test]
fn validation_reports_every_error_naming_the_sink() {
    let toml = r#"
[alerting]
dedup = { key = ["proc.exe"] }
[[alerting.sinks]]
type = "webhook"
name = "a"
[[alerting.sinks]]
type = "syslog"
name = "b"
address = "nope"
format = "ocsf"
path = "/x"
[[alerting.sinks]]
type = "file"
name = "a"
rules_include = ["[bad"]
retry = { max_attempts = 0 }
[[alerting.sinks]]
type = "slack"
name = "s"
url = "ftp://hooks.example/T/SECRET"
"#;
    let r: Root = toml::from_str(toml).unwrap();
    let errs = r.alerting.validate().unwrap_err();
    let all = errs.to_string();
    for want in [
        "alerting.dedup: key field `proc.exe`",
        "sink `a` (webhook): one of `url` or `url_env` is required",
        "sink `b` (syslog): `address` `nope` is not host:port",
        "sink `b` (syslog): `format` must be `json` or `cef`",
        "sink `b` (syslog): field `path` is not valid for syslog sinks",
        "sink `a`: duplicate sink name",
        "sink `a` (file): `path` is required",
        "sink `a` (file): `rules_include` pattern `[bad` is invalid",
        "sink `a` (file): `retry.max_attempts` must be >= 1",
        "sink `s` (slack): `url` must be http:// or https://",
    ] {
        assert!(all.contains(want), "missing `{want}` in:\n{all}");
    }
    assert!(!all.contains("SECRET"), "{all}");
    assert_eq!(errs.0.len(), 10, "{all}");
}

#[tokio::test]
async fn start_reports_missing_secret_env_without_values() {
    let dir = tempfile::tempdir().unwrap();
    let err = Alerter::start(AlertingConfig {
        outbox: dir.path().join("o.db"),
        sinks: vec![SinkConfig {
            kind: SinkType::Webhook,
            name: "w".into(),
            url_env: Some("ALERTING_TEST_SURELY_UNSET_VAR".into()),
            ..Default::default()
        }],
        ..Default::default()
    })
    .err()
    .unwrap();
    let s = err.to_string();
    assert!(s.contains("sink `w`") && s.contains("ALERTING_TEST_SURELY_UNSET_VAR"), "{s}");
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let r = Alerter::start(AlertingConfig { outbox: dir.path().join("o.db"), ..Default::default() });
    assert!(matches!(r, Err(alerting::AlertingError::NoRuntime)));
}
