mod common;

use common::*;
use policy::{ErrorKind, ReloadableEngine};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

fn alert_rules(engine: &mut policy::PolicyEngine) -> Vec<String> {
    engine.evaluate(&open_event("/usr/bin/cat", "/etc/shadow")).alerts.into_iter().map(|a| a.message).collect()
}

#[test]
fn valid_reload_swaps_the_set() {
    let dir = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"v1\""))]);
    let handle = ReloadableEngine::new(config_for(&[dir.path()]), &[]).unwrap();
    let mut engine = handle.engine();
    assert_eq!(alert_rules(&mut engine), ["v1"]);

    write(dir.path(), "a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"v2\""));
    write(dir.path(), "b.rego", &rule("b", "[\"open\"]", "high", "  msg := \"new rule\""));
    let summary = handle.reload().unwrap();
    assert_eq!((summary.generation, summary.rules, summary.enabled), (1, 2, 2));

    let eval = engine.evaluate(&open_event("/usr/bin/cat", "/etc/shadow"));
    assert_eq!(eval.generation, 1);
    let mut msgs: Vec<_> = eval.alerts.iter().map(|a| a.message.as_str()).collect();
    msgs.sort();
    assert_eq!(msgs, ["new rule", "v2"]);
    assert_eq!(handle.counters().reloads, 1);
    assert_eq!(handle.counters().evaluations, 2, "counters survive the reload");
}

#[test]
fn invalid_reload_keeps_the_old_set() {
    let dir = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"v1\""))]);
    let handle = ReloadableEngine::new(config_for(&[dir.path()]), &[]).unwrap();
    let mut engine = handle.engine();

    write(dir.path(), "a.rego", "package sensor.rules.a\nimport rego.v1\nalert contains if {\n");
    let errors = handle.reload().unwrap_err();
    assert_eq!(errors.errors()[0].kind, ErrorKind::Syntax);
    assert!(errors.errors()[0].file.ends_with("a.rego"));
    let event = errors.reload_failed_event();
    assert_eq!(event["type"], "policy_reload_failed");
    assert_eq!(event["errors"][0]["kind"], "syntax");

    let eval = engine.evaluate(&open_event("/usr/bin/cat", "/etc/shadow"));
    assert_eq!(eval.generation, 0);
    assert_eq!(eval.alerts[0].message, "v1");
    assert_eq!(handle.current().generation(), 0);
    let c = handle.counters();
    assert_eq!((c.reloads, c.reload_failures), (0, 1));

    // Fixing the file makes the next reload succeed.
    write(dir.path(), "a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"fixed\""));
    assert_eq!(handle.reload().unwrap().generation, 1);
    assert_eq!(alert_rules(&mut engine), ["fixed"]);
}

#[test]
fn no_event_is_dropped_or_evaluated_twice_across_reloads() {
    let dir = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"x\""))]);
    let mut cfg = config_for(&[dir.path()]);
    cfg.cache_size = 0;
    let handle = ReloadableEngine::new(cfg, &[]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (handle, stop) = (handle.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                handle.reload().unwrap();
                n += 1;
            }
            n
        })
    };
    let mut engine = handle.engine();
    let total = 3000;
    let mut last_generation = 0;
    for _ in 0..total {
        let eval = engine.evaluate(&open_event("/usr/bin/cat", "/etc/shadow"));
        assert_eq!(eval.alerts.len(), 1, "exactly one alert per event, whatever the set");
        assert!(eval.generation >= last_generation, "sets only move forward");
        last_generation = eval.generation;
    }
    stop.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap();
    assert!(reloads > 0);
    let c = handle.counters();
    assert_eq!(c.evaluations, total as u64);
    assert_eq!(c.alerts, total as u64);
    assert_eq!(c.rule_evaluations, total as u64);
}

#[test]
fn watcher_reloads_on_change_and_reports_failures() {
    let dir = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"v1\""))]);
    let handle = ReloadableEngine::new(config_for(&[dir.path()]), &[]).unwrap();
    let mut engine = handle.engine();
    let (tx, rx) = mpsc::channel();
    let watch = handle.watch(Duration::from_millis(100), move |r| {
        let _ = tx.send(r.map(|s| s.generation).map_err(|e| e.errors()[0].kind));
    });
    assert!(watch.is_running());

    write(dir.path(), "a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"version two\""));
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(1));
    assert_eq!(alert_rules(&mut engine), ["version two"]);

    write(dir.path(), "data.json", "{not json");
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Err(ErrorKind::Data));
    assert_eq!(alert_rules(&mut engine), ["version two"]);

    std::fs::remove_file(dir.path().join("data.json")).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(2));
    drop(watch);
}
