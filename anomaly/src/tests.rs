use super::*;

fn cfg() -> AnomalyConfig {
    AnomalyConfig { learning_secs: 10, min_observations: 20, min_requests: 20, ..AnomalyConfig::default() }
}

fn conn<'a>(c: &'a str, s: &'a str) -> Input<'a> {
    Input::Connection { client: c, server: s, client_local: true, server_local: true }
}

/// Steady traffic a -> b every 100 ms for `secs`, from `t`; returns the end time.
fn steady(d: &mut Detector, t: u64, secs: u64, out: &mut Vec<Anomaly>) -> u64 {
    let mut t = t;
    for i in 0..secs * 10 {
        d.observe(&conn("a", "b"), t, out);
        let latency_ns = 5_000_000 + (i % 7) * 300_000;
        let req = Input::Request { client: "a", server: "b", protocol: "http", failed: false, latency_ns };
        d.observe(&req, t, out);
        t += 100;
    }
    t
}

#[test]
fn learns_then_flags_a_new_edge_once_naming_both_ends() {
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    let t = steady(&mut d, 1_000, 15, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    assert!(d.service("a").unwrap().learned_ms.is_some());
    d.observe(&conn("a", "c"), t, &mut out);
    d.observe(&conn("a", "c"), t + 1, &mut out);
    let edges: Vec<_> = out.iter().filter(|a| a.kind == Kind::NewEdge).collect();
    assert_eq!(edges.len(), 1, "{out:#?}");
    let e = edges[0];
    assert_eq!(
        (e.client.as_deref(), e.server.as_deref(), e.direction.as_deref()),
        (Some("a"), Some("c"), Some("outbound"))
    );
    assert_eq!(e.service, "a");
    assert!(e.score > 2.0, "{}", e.score);
    // c is itself new after the learning period
    assert!(out.iter().any(|a| a.kind == Kind::NewService && a.service == "c"));
    // the id is stable
    assert_eq!(e.id, anomaly_id(Kind::NewEdge, "a", "c"));
    // accepted: never again, even after renotify_secs
    let o = Override::Accept {
        kind: Kind::NewEdge,
        service: "a".into(),
        subject: "c".into(),
        direction: Some("outbound".into()),
    };
    d.apply(&o);
    out.clear();
    d.observe(&conn("a", "c"), t + 100_000_000, &mut out);
    assert!(out.iter().all(|a| a.kind != Kind::NewEdge), "{out:#?}");
}

#[test]
fn flagged_items_come_back_only_after_renotify() {
    let mut d = Detector::new(AnomalyConfig { renotify_secs: 60, ..cfg() });
    let mut out = Vec::new();
    let t = steady(&mut d, 1_000, 15, &mut out);
    d.observe(&Input::Listen { service: "b", port: 9999 }, t, &mut out);
    d.observe(&Input::Listen { service: "b", port: 9999 }, t + 1000, &mut out);
    assert_eq!(out.iter().filter(|a| a.kind == Kind::NewListenPort).count(), 1);
    d.observe(&Input::Listen { service: "b", port: 9999 }, t + 61_000, &mut out);
    assert_eq!(out.iter().filter(|a| a.kind == Kind::NewListenPort).count(), 2);
}

#[test]
fn lineage_and_executables() {
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    let mut t = 1_000;
    for _ in 0..200 {
        d.observe(
            &Input::Exec { service: "b", parent_exe: Some("/usr/bin/python3"), exe: "/usr/bin/git" },
            t,
            &mut out,
        );
        t += 100;
    }
    assert!(out.is_empty());
    d.observe(&Input::Exec { service: "b", parent_exe: Some("/usr/bin/python3"), exe: "/bin/sh" }, t, &mut out);
    let kinds: Vec<Kind> = out.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [Kind::NewLineage, Kind::NewExecutable]);
    assert_eq!(out[0].subject, "/usr/bin/python3 -> /bin/sh");
    out.clear();
    // a known child from a new parent: a new lineage only
    d.observe(&Input::Exec { service: "b", parent_exe: Some("/bin/sh"), exe: "/usr/bin/git" }, t + 1, &mut out);
    assert_eq!(out.iter().map(|a| a.kind).collect::<Vec<_>>(), [Kind::NewLineage]);
}

#[test]
fn latency_shift_and_error_spike_on_an_edge() {
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    let mut t = steady(&mut d, 1_000, 15, &mut out);
    t = steady(&mut d, t, 5, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    for i in 0..40 {
        let req =
            Input::Request { client: "a", server: "b", protocol: "http", failed: i % 2 == 0, latency_ns: 50_000_000 };
        d.observe(&req, t, &mut out);
        t += 100;
    }
    let kinds: Vec<Kind> = out.iter().map(|a| a.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == Kind::LatencyShift).count(), 1, "{out:#?}");
    assert_eq!(kinds.iter().filter(|k| **k == Kind::ErrorRateSpike).count(), 1, "{out:#?}");
    let l = out.iter().find(|a| a.kind == Kind::LatencyShift).unwrap();
    assert!(l.observed["ratio"].as_f64().unwrap() > 5.0, "{l:#?}");
    assert_eq!((l.client.as_deref(), l.server.as_deref()), (Some("a"), Some("b")));
    out.clear();
    steady(&mut d, t, 10, &mut out);
    assert!(out.is_empty(), "back to normal must be silent: {out:#?}");
}

#[test]
fn learning_counts_activity_not_wall_time() {
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    // 30 observations, an hour apart: plenty of wall time, no activity
    for i in 0..30 {
        d.observe(&conn("a", "b"), 1_000 + i * 3_600_000, &mut out);
    }
    assert!(d.service("a").unwrap().learned_ms.is_none());
    assert!(!d.global_learned());
}

#[test]
fn reset_forgets() {
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    steady(&mut d, 1_000, 15, &mut out);
    d.apply(&Override::Reset { service: Some("a".into()) });
    assert!(d.service("a").is_none() && d.service("b").is_some());
    d.apply(&Override::Reset { service: None });
    assert_eq!(d.stats().services, 0);
}

/// 10k services and 100k edges against the default caps: memory is held
/// by the caps (services LRU, peers per service), and evictions are counted.
#[test]
fn caps_hold_with_10k_services_and_100k_edges() {
    let c = AnomalyConfig { max_services: 2_000, max_peers: 16, ..cfg() };
    let mut d = Detector::new(c);
    let mut out = Vec::new();
    let names: Vec<String> = (0..10_000).map(|i| format!("svc-{i}")).collect();
    for e in 0..100_000usize {
        let client = &names[e % 10_000];
        let server = &names[(e * 7 + e / 10_000) % 10_000];
        d.observe(&conn(client, server), 1_000 + e as u64, &mut out);
    }
    let s = d.stats();
    assert_eq!(s.services, 2_000);
    assert!(s.services_evicted >= 8_000, "{s:?}");
    let max_out = d.services().map(|(_, s)| s.outbound.len()).max().unwrap();
    let max_in = d.services().map(|(_, s)| s.inbound.len()).max().unwrap();
    assert!(max_out <= 16 && max_in <= 16, "{max_out} {max_in}");
    // the persisted form is bounded by the same caps
    let rows = d.take_dirty();
    assert!(rows.len() <= 2_000);
    // anomalies are rate limited and the excess counted
    assert!(s.anomalies as usize <= out.len() && s.anomalies_dropped + s.anomalies >= out.len() as u64);
}

#[test]
fn per_service_set_caps_evict_least_recent() {
    let c = AnomalyConfig { max_ports: 4, max_lineages: 4, max_executables: 4, ..cfg() };
    let mut d = Detector::new(c);
    let mut out = Vec::new();
    for p in 0..10u16 {
        d.observe(&Input::Listen { service: "s", port: 1000 + p }, 1_000 + p as u64, &mut out);
        let exe = format!("/bin/x{p}");
        d.observe(&Input::Exec { service: "s", parent_exe: Some("/bin/sh"), exe: &exe }, 1_000 + p as u64, &mut out);
    }
    let s = d.service("s").unwrap();
    assert_eq!((s.ports.len(), s.lineage.len(), s.executables.len()), (4, 4, 4));
    assert!(s.ports.contains_key(&1009) && !s.ports.contains_key(&1000));
    let st = d.stats();
    assert_eq!((st.ports_evicted, st.lineages_evicted, st.executables_evicted), (6, 6, 6));
}

#[test]
fn persisted_baselines_reload_and_keep_judging() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.db");
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    let t = steady(&mut d, 1_000, 15, &mut out);
    let mut store = store::Store::open(&path).unwrap();
    store.persist(d.take_dirty(), d.global(), 100).unwrap();
    drop(store);

    let store = store::Store::open(&path).unwrap();
    let (g, services) = store.load(100).unwrap();
    let mut d2 = Detector::new(cfg());
    d2.load(g, services);
    assert!(d2.service("a").unwrap().learned_ms.is_some());
    let mut out = Vec::new();
    steady(&mut d2, t, 5, &mut out);
    assert!(out.is_empty(), "{out:#?}");
    d2.observe(&conn("a", "z"), t + 10_000, &mut out);
    assert!(out.iter().any(|a| a.kind == Kind::NewEdge), "{out:#?}");
}

#[test]
fn cli_reset_and_accept_reach_the_detector_through_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.db");
    let mut d = Detector::new(cfg());
    let mut out = Vec::new();
    let t = steady(&mut d, 1_000, 15, &mut out);
    d.observe(&conn("a", "c"), t, &mut out);
    let edge = out.iter().find(|a| a.kind == Kind::NewEdge).unwrap().clone();
    let mut store = store::Store::open(&path).unwrap();
    store.record_anomaly(&edge, t).unwrap();
    store.persist(d.take_dirty(), d.global(), 100).unwrap();

    // the CLI, on its own connection
    let mut cli = store::Store::open(&path).unwrap();
    assert!(cli.accept("0000", t).unwrap().is_none());
    let a = cli.accept(&edge.id, t).unwrap().unwrap();
    assert_eq!(a.kind, "new_edge");
    let stored = cli.services(Some("a")).unwrap();
    assert!(stored[0].1.outbound["c"].seen.flagged_ms.is_none(), "applied to the stored row");
    cli.reset(Some("b"), t).unwrap();

    // the sensor's next persist: b's row is not written back, the accept is applied to a's
    d.observe(&conn("a", "b"), t + 1, &mut out);
    let overrides = store.persist(d.take_dirty(), d.global(), 100).unwrap();
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert!(store.services(Some("b")).unwrap().is_empty());
    assert!(store.services(Some("a")).unwrap()[0].1.outbound["c"].seen.flagged_ms.is_none());
    for o in &overrides {
        d.apply(o);
    }
    assert!(d.service("b").is_none());
    assert!(d.service("a").unwrap().outbound["c"].seen.flagged_ms.is_none());
    assert_eq!(store.pending_overrides().unwrap(), 0);
}

#[test]
fn a_corrupt_database_is_moved_aside_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baseline.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let e = store::Store::open(&path).err().unwrap().to_string();
    assert!(e.contains("not a readable baseline database"), "{e}");
    let (s, msg) = store::Store::open_or_fresh(&path).unwrap();
    let msg = msg.unwrap();
    assert!(msg.contains("moved it to") && msg.contains("started with empty baselines"), "{msg}");
    assert!(s.services(None).unwrap().is_empty());
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
}

#[test]
fn bad_config_reports_every_problem() {
    let c = AnomalyConfig {
        max_services: 0,
        latency_min_ratio: 0.5,
        drift_alpha: 2.0,
        min_requests: 1,
        ..AnomalyConfig::default()
    };
    let e = c.validate().unwrap_err();
    for k in ["max_services", "latency_min_ratio", "drift_alpha", "min_requests"] {
        assert!(e.contains(k), "{e}");
    }
    AnomalyConfig::default().validate().unwrap();
}
