mod common;

use common::*;
use policy::{
    ErrorKind, PolicyConfig, PolicyEngine, PolicyErrors, PolicySet, RuleOverride, RuntimeErrorKind, Severity,
};
use serde_json::json;
use std::collections::BTreeMap;

fn load_err(files: &[(&str, &str)]) -> PolicyErrors {
    let dir = rules_dir(files);
    PolicySet::load(&config_for(&[dir.path()]), &[]).expect_err("should be rejected")
}

fn only(errors: &PolicyErrors, kind: ErrorKind) -> &policy::PolicyError {
    let matching: Vec<_> = errors.errors().iter().filter(|e| e.kind == kind).collect();
    assert_eq!(matching.len(), 1, "expected one {kind:?} in: {errors}");
    matching[0]
}

#[test]
fn loads_default_rules_from_dir_and_embedded() {
    let set = PolicySet::load(&config_for(&[&default_rules_dir()]), &[]).unwrap();
    let ids: Vec<_> = set.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 62, "{ids:?}");
    for id in [
        "account_database_modified",
        "bpf_program_load",
        "cgroup_release_agent_write",
        "connect_to_bad_cidr",
        "container_drift_exec",
        "container_escape_mount_ns",
        "container_runtime_socket_access",
        "container_runtime_socket_access_in_container",
        "credential_search",
        "cron_modified",
        "download_piped_to_shell",
        "exec_from_dev_shm",
        "exec_from_writable_dir",
        "exec_from_writable_dir_in_container",
        "exec_from_writable_dir_unexpected_parent",
        "fileless_exec_memfd",
        "kernel_module_load",
        "ld_preload_modified",
        "link_to_sensitive_file",
        "log_tampering",
        "mining_pool_connection",
        "new_listening_port",
        "nsenter_init_namespaces",
        "package_manager_in_container",
        "path_traversal_sensitive_read",
        "process_masquerading",
        "ptrace_attach",
        "ptrace_attach_by_debugger",
        "ptrace_traceme",
        "raw_packet_socket",
        "raw_packet_socket_in_container",
        "read_cloud_credentials",
        "read_process_memory",
        "read_sensitive_auth_file",
        "read_shadow",
        "read_ssh_private_key",
        "reverse_shell_dev_tcp",
        "reverse_shell_tool",
        "secure_delete_tool",
        "security_tool_tampering",
        "setuid_bit_set",
        "shell_from_server",
        "shell_history_tampering",
        "shell_in_container",
        "shell_network_connect",
        "shell_rc_modified",
        "shell_stdio_to_socket",
        "ssh_authorized_keys_modified",
        "ssh_nonstandard_port",
        "systemd_unit_modified",
        "user_or_group_created",
        "write_below_binary_dir",
        "write_below_etc",
    ] {
        assert!(ids.contains(&id), "default rule {id} missing: {ids:?}");
    }
    let shadow = set.rule("read_shadow").unwrap();
    assert_eq!(shadow.severity, Severity::High);
    assert_eq!(shadow.events, ["open"]);
    assert_eq!(shadow.mitre, ["T1003.008"]);
    assert!(shadow.enabled);

    // The same files handed over in memory, as the sensor does with its embedded set.
    let embedded: Vec<(String, String)> =
        ["read_shadow.rego", "read_shadow_test.rego", "lib/process.rego", "data/lists.json"]
            .iter()
            .map(|rel| (rel.to_string(), std::fs::read_to_string(default_rules_dir().join(rel)).unwrap()))
            .collect();
    let refs: Vec<(&str, &str)> = embedded.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut engine = PolicyEngine::load(&PolicyConfig::default(), &refs).unwrap();
    assert_eq!(
        engine.policy_set().files(),
        ["embedded:read_shadow.rego", "embedded:lib/process.rego", "embedded:data/lists.json"]
    );
    let eval = engine.evaluate(&open_event("/usr/bin/cat", "/etc/shadow"));
    assert_eq!(eval.alerts.len(), 1);
    let eval = engine.evaluate(&open_event("/usr/sbin/sshd", "/etc/shadow"));
    assert!(eval.alerts.is_empty(), "allowlist from data/lists.json applies");

    // default_rules = false ignores the embedded set.
    let cfg = PolicyConfig { default_rules: false, ..PolicyConfig::default() };
    assert!(PolicySet::load(&cfg, &refs).unwrap().rules().is_empty());
}

#[test]
fn alert_carries_rule_fields_extras_and_event() {
    let mut engine = PolicyEngine::load(&config_for(&[&default_rules_dir()]), &[]).unwrap();
    let event = connect_event("/bin/bash", "203.0.113.9", 4444);
    let eval = engine.evaluate(&event);
    assert!(eval.errors.is_empty(), "{:?}", eval.errors);
    // 203.0.113.0/24 and port 4444 also fire connect_to_bad_cidr and mining_pool_connection.
    let rules: Vec<_> = eval.alerts.iter().map(|a| a.rule.as_str()).collect();
    assert_eq!(rules.len(), 3, "{rules:?}");
    let a = eval.alerts.iter().find(|a| a.rule == "shell_network_connect").expect("shell_network_connect alert");
    assert_eq!(a.rule, "shell_network_connect");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.title, "Shell process opened an outbound network connection");
    assert_eq!(a.message, "/bin/bash (pid 300) connected to 203.0.113.9:4444");
    assert_eq!(a.mitre, ["T1059.004", "T1071"]);
    assert_eq!(a.event, event);
    assert_eq!(a.extra.get("dport"), Some(&json!(4444)));
    let serialized = serde_json::to_value(a).unwrap();
    assert_eq!(serialized["daddr"], "203.0.113.9");
    assert_eq!(serialized["severity"], "critical");
    assert_eq!(serde_json::from_value::<policy::Alert>(serialized).unwrap(), *a);
}

#[test]
fn syntax_error_has_file_line_col() {
    let errors =
        load_err(&[("bad.rego", "package sensor.rules.bad\nimport rego.v1\nalert contains 1 if {\n  input.a ==\n}\n")]);
    let e = only(&errors, ErrorKind::Syntax);
    assert!(e.file.ends_with("bad.rego"), "{e}");
    assert_eq!((e.line, e.col), (5, 1));
    assert!(e.to_string().contains("bad.rego:5:1: syntax error:"), "{e}");
}

#[test]
fn compile_error_names_rule_and_position() {
    let errors = load_err(&[("r.rego", &rule("unsafe", "[\"open\"]", "low", "  y == 1\n  msg := \"x\""))]);
    let e = only(&errors, ErrorKind::Compile);
    assert_eq!(e.rule.as_deref(), Some("unsafe"));
    assert_eq!((e.line, e.col), (12, 3), "{e}");
    assert!(e.message.contains("unsafe"), "{e}");
}

#[test]
fn missing_and_invalid_metadata_are_reported() {
    let errors = load_err(&[(
        "nometa.rego",
        "package sensor.rules.nometa\nimport rego.v1\nalert contains {\"message\": \"x\"} if input.type == \"open\"\n",
    )]);
    let e = only(&errors, ErrorKind::Metadata);
    assert_eq!(e.rule.as_deref(), Some("nometa"));
    assert!(e.message.contains("no `metadata`"), "{e}");

    let src = "package sensor.rules.badmeta\nimport rego.v1\n\nmetadata := {\"severity\": \"low\", \"events\": [\"open\"], \"mitre\": [\"X1\"], \"colour\": 1}\nalert contains {\"message\": \"x\"} if input.type == \"open\"\n";
    let errors = load_err(&[("badmeta.rego", src)]);
    let msgs: Vec<_> = errors.errors().iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 3, "{errors}");
    assert!(msgs.iter().any(|m| m.contains("`title`")), "{errors}");
    assert!(msgs.iter().any(|m| m.contains("`X1`")), "{errors}");
    assert!(msgs.iter().any(|m| m.contains("`colour`")), "{errors}");
    for e in errors.errors() {
        assert_eq!((e.line, e.col), (4, 1), "metadata position: {e}");
    }
}

#[test]
fn unknown_event_type_is_reported() {
    let errors = load_err(&[("r.rego", &rule("typo", "[\"opne\"]", "low", "  msg := \"x\""))]);
    let e = only(&errors, ErrorKind::UnknownEventType);
    assert_eq!(e.rule.as_deref(), Some("typo"));
    assert_eq!((e.line, e.col), (4, 1));
    assert!(e.message.contains("`opne`"), "{e}");
}

#[test]
fn unknown_severity_is_reported() {
    let errors = load_err(&[("r.rego", &rule("sev", "[\"open\"]", "severe", "  msg := \"x\""))]);
    let e = only(&errors, ErrorKind::UnknownSeverity);
    assert!(e.message.contains("\"severe\""), "{e}");
    assert!(e.to_string().contains("r.rego:4:1: rule sev: unknown severity"), "{e}");
}

#[test]
fn missing_alert_is_reported() {
    let src = "package sensor.rules.noalert\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"low\", \"events\": [\"open\"]}\nalerts contains \"x\" if true\n";
    let errors = load_err(&[("r.rego", src)]);
    let e = only(&errors, ErrorKind::MissingAlert);
    assert_eq!((e.line, e.col, e.rule.as_deref()), (1, 1, Some("noalert")));
}

#[test]
fn duplicate_rule_ids_are_reported() {
    let a = rule("dup", "[\"open\"]", "low", "  msg := \"a\"");
    let b = "package sensor.rules.other.dup\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"low\", \"events\": [\"open\"]}\nalert contains \"b\" if true\n";
    let errors = load_err(&[("a.rego", &a), ("b/dup.rego", b)]);
    let e = only(&errors, ErrorKind::DuplicateRule);
    assert!(e.message.contains("`dup`"), "{e}");
}

#[test]
fn bad_data_documents_are_reported() {
    let errors = load_err(&[("lists.json", "{\n  \"sensor\": [1,\n}\n")]);
    let e = only(&errors, ErrorKind::Data);
    assert!(e.file.ends_with("lists.json"));
    assert_eq!(e.line, 3, "{e}");
    let errors = load_err(&[("a.json", "{\"x\": 1}"), ("b.yaml", "x: 2\n")]);
    assert!(only(&errors, ErrorKind::Data).message.contains("conflicts"));
    let errors = load_err(&[("a.json", "[1, 2]")]);
    assert!(only(&errors, ErrorKind::Data).message.contains("must be an object"));
}

#[test]
fn bad_overrides_and_dirs_are_reported() {
    let dir = rules_dir(&[("r.rego", &rule("r", "[\"open\"]", "low", "  msg := \"x\""))]);
    let mut cfg = config_for(&[dir.path()]);
    cfg.overrides.insert("nope".into(), RuleOverride { enabled: Some(false), ..Default::default() });
    cfg.overrides
        .insert("r".into(), RuleOverride { exceptions: vec![policy::Exception::default()], ..Default::default() });
    let errors = PolicySet::load(&cfg, &[]).unwrap_err();
    let kinds: Vec<_> = errors.errors().iter().map(|e| (e.kind, e.rule.clone().unwrap())).collect();
    assert_eq!(kinds.len(), 2, "{errors}");
    assert!(errors.to_string().contains("override for unknown rule `nope`"), "{errors}");
    assert!(errors.to_string().contains("exception #1: an exception needs"), "{errors}");

    let cfg = config_for(&[std::path::Path::new("/nonexistent/rules")]);
    let errors = PolicySet::load(&cfg, &[]).unwrap_err();
    assert_eq!(only(&errors, ErrorKind::Io).file, "/nonexistent/rules");
}

#[test]
fn every_broken_file_is_reported_at_once() {
    let errors = load_err(&[
        ("a.rego", &rule("a", "[\"opne\"]", "low", "  msg := \"x\"")),
        ("b.rego", &rule("b", "[\"open\"]", "loud", "  msg := \"x\"")),
        ("c.rego", "package sensor.rules.c\nimport rego.v1\nalert contains if {\n"),
        ("d.rego", &rule("d", "[\"open\"]", "low", "  msg := \"fine\"")),
    ]);
    assert_eq!(errors.len(), 3, "{errors}");
    let text = errors.to_string();
    assert!(text.starts_with("3 policy error(s)"));
    assert!(text.contains("a.rego:4:1") && text.contains("b.rego:4:1") && text.contains("c.rego:"), "{text}");
    let ev = errors.reload_failed_event();
    assert_eq!(ev["type"], "policy_reload_failed");
    assert_eq!(ev["errors"].as_array().unwrap().len(), 3);
}

#[test]
fn events_meet_only_subscribed_rules() {
    let dir = rules_dir(&[
        ("o.rego", &rule("on_open", "[\"open\"]", "low", "  msg := \"open\"")),
        ("e.rego", &rule("on_exec", "[\"exec\"]", "low", "  msg := \"exec\"")),
        ("b.rego", &rule("on_both", "[\"open\", \"exec\"]", "low", "  msg := \"both\"")),
        ("a.rego", &rule("on_all", "[\"*\"]", "info", "  msg := input.type")),
    ]);
    let mut cfg = config_for(&[dir.path()]);
    cfg.cache_size = 0;
    let mut engine = PolicyEngine::load(&cfg, &[]).unwrap();
    let set = engine.policy_set().clone();
    assert_eq!(set.rules_for("open"), ["on_all", "on_both", "on_open"]);
    assert_eq!(set.rules_for("exec"), ["on_all", "on_both", "on_exec"]);
    assert_eq!(set.rules_for("dns"), ["on_all"]);
    assert_eq!(set.rules_for("not_a_type"), ["on_all"]);

    let rules_of = |e: &policy::Evaluation| e.alerts.iter().map(|a| a.rule.clone()).collect::<Vec<_>>();
    let eval = engine.evaluate(&open_event("/usr/bin/cat", "/x"));
    assert_eq!(rules_of(&eval), ["on_all", "on_both", "on_open"]);
    let eval = engine.evaluate(&json!({"type": "brand_new"}));
    assert_eq!(rules_of(&eval), ["on_all"]);
    assert_eq!(eval.alerts[0].message, "brand_new");
    // The rules ran 3 + 1 times, never the others.
    assert_eq!(engine.counters().rule_evaluations, 4);

    let eval = engine.evaluate(&json!({"no_type": 1}));
    assert!(eval.alerts.is_empty());
    assert!(eval.errors[0].message.contains("`type`"));
}

#[test]
fn overrides_disable_and_change_severity() {
    let dir = rules_dir(&[
        ("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"a\"")),
        ("b.rego", &rule("b", "[\"open\"]", "low", "  msg := \"b\"")),
    ]);
    let mut cfg = config_for(&[dir.path()]);
    cfg.overrides = toml::from_str("[a]\nenabled = false\n[b]\nseverity = \"critical\"\n").unwrap();
    let mut engine = PolicyEngine::load(&cfg, &[]).unwrap();
    let set = engine.policy_set().clone();
    assert!(!set.rule("a").unwrap().enabled);
    assert_eq!(set.rule("b").unwrap().severity, Severity::Critical);
    assert_eq!(set.rule("b").unwrap().rule_severity, Severity::Low);
    let eval = engine.evaluate(&open_event("/bin/cat", "/x"));
    assert_eq!(eval.alerts.len(), 1);
    assert_eq!((eval.alerts[0].rule.as_str(), eval.alerts[0].severity), ("b", Severity::Critical));
}

#[test]
fn overrides_file_in_each_format() {
    let rules = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"a\""))]);
    for (name, text) in [
        ("o.json", r#"{"a": {"severity": "high", "exceptions": [{"exe": "/usr/bin/*"}]}}"#),
        ("o.yaml", "a:\n  severity: high\n  exceptions:\n    - exe: /usr/bin/*\n"),
        ("o.toml", "[a]\nseverity = \"high\"\nexceptions = [{ exe = \"/usr/bin/*\" }]\n"),
    ] {
        let odir = rules_dir(&[(name, text)]);
        let mut cfg = config_for(&[rules.path()]);
        cfg.overrides_file = Some(odir.path().join(name));
        // Inline settings win over the file; exceptions add up.
        cfg.overrides.insert("a".into(), RuleOverride { severity: Some(Severity::Medium), ..Default::default() });
        let mut engine = PolicyEngine::load(&cfg, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(engine.policy_set().rule("a").unwrap().severity, Severity::Medium, "{name}");
        assert!(engine.evaluate(&open_event("/usr/bin/cat", "/x")).alerts.is_empty(), "{name}");
        assert_eq!(engine.evaluate(&open_event("/opt/x", "/x")).alerts.len(), 1, "{name}");
    }
    let odir = rules_dir(&[("o.json", "{\"a\": {\"severity\": \"loud\"}}")]);
    let mut cfg = config_for(&[rules.path()]);
    cfg.overrides_file = Some(odir.path().join("o.json"));
    let errors = PolicySet::load(&cfg, &[]).unwrap_err();
    let e = only(&errors, ErrorKind::Override);
    assert!(e.message.contains("loud") && e.line == 1, "{e}");
}

#[test]
fn exceptions_silence_matching_events_only() {
    let dir = rules_dir(&[("a.rego", &rule("a", "[\"open\", \"exec\"]", "low", "  msg := \"a\""))]);
    let exceptions: BTreeMap<String, RuleOverride> = toml::from_str(
        r#"
        [a]
        exceptions = [
          { exe = "/usr/sbin/backup*" },
          { container = "3f2a*", path = "/etc/*" },
          { comm = ["bash", "sh"], uid = 1000 },
        ]
        ["*"]
        exceptions = [{ path = "/var/lib/noisy/**" }]
        "#,
    )
    .unwrap();
    let mut cfg = config_for(&[dir.path()]);
    cfg.overrides = exceptions;
    let mut engine = PolicyEngine::load(&cfg, &[]).unwrap();
    assert_eq!(engine.policy_set().rule("a").unwrap().exceptions, 4);
    let mut in_container = open_event("/usr/bin/cat", "/etc/passwd");
    in_container["process"]["container_id"] = json!("3f2a9c");
    let mut other_container = in_container.clone();
    other_container["process"]["container_id"] = json!("99");
    let cases = [
        (open_event("/usr/sbin/backup-tool", "/etc/shadow"), true),
        (open_event("/usr/sbin/backup/tool", "/etc/shadow"), false), // `*` stays in a segment
        (in_container, true),
        (other_container, false),
        (open_event("/usr/bin/cat", "/var/lib/noisy/a/b"), true), // global exception
        (exec_event("/bin/bash", None), true),                    // comm bash and uid 1000
        (open_event("/bin/bash", "/tmp/x"), false),               // comm bash but uid 0
    ];
    for (event, silenced) in &cases {
        let eval = engine.evaluate(event);
        assert_eq!(eval.alerts.is_empty(), *silenced, "{event}");
        assert_eq!(eval.suppressed, usize::from(*silenced));
    }
    assert_eq!(engine.counters().suppressed, 4);
}

#[test]
fn cache_serves_repeats_and_ignores_unread_fields() {
    let mut engine = PolicyEngine::load(&config_for(&[&default_rules_dir()]), &[]).unwrap();
    let first = open_event("/usr/bin/cat", "/etc/shadow");
    let mut second = first.clone();
    // Fields no rule reads for open events: still a cache hit. (The pid is read:
    // read_process_memory tells a process's own /proc/N from another's.)
    second["ts"] = json!("2026-11-25T17:05:00Z");
    second["process"]["ppid"] = json!(4242);
    let e1 = engine.evaluate(&first);
    let e2 = engine.evaluate(&second);
    assert!(!e1.cached && e2.cached);
    assert_eq!(e2.alerts[0].message, e1.alerts[0].message);
    assert_eq!(e2.alerts[0].event, second, "a cached alert carries the current event");
    // A field a rule reads makes a different key.
    let e3 = engine.evaluate(&open_event("/usr/bin/less", "/etc/shadow"));
    assert!(!e3.cached);
    assert_eq!(e3.alerts[0].message, "/usr/bin/less read /etc/shadow");
    let c = engine.counters();
    assert_eq!((c.cache_hits, c.cache_misses), (1, 2));

    // A pid read by the connect rule's message is part of that type's key.
    let a = engine.evaluate(&connect_event("/bin/bash", "203.0.113.9", 4444));
    let mut other_pid = connect_event("/bin/bash", "203.0.113.9", 4444);
    other_pid["process"]["pid"] = json!(301);
    let b = engine.evaluate(&other_pid);
    assert!(!b.cached);
    assert_ne!(a.alerts[0].message, b.alerts[0].message);
}

#[test]
fn cache_is_bypassed_when_unsound() {
    let dir = rules_dir(&[
        (
            "dyn.rego",
            &rule(
                "dyn",
                "[\"open\"]",
                "low",
                "  count(object.keys(input)) > 0\n  msg := sprintf(\"%v\", [input.process.pid])",
            ),
        ),
        ("time.rego", &rule("clock", "[\"exec\"]", "low", "  time.now_ns() > 0\n  msg := \"t\"")),
        ("ok.rego", &rule("ok", "[\"dns\"]", "low", "  msg := input.type")),
    ]);
    let mut engine = PolicyEngine::load(&config_for(&[dir.path()]), &[]).unwrap();
    for _ in 0..3 {
        let a = engine.evaluate(&open_event("/bin/cat", "/x"));
        assert!(!a.cached && a.alerts.len() == 1, "{a:?}");
        assert!(!engine.evaluate(&exec_event("/bin/ls", None)).cached);
    }
    let c = engine.counters();
    assert_eq!((c.cache_hits, c.cache_misses), (0, 0));
    engine.evaluate(&json!({"type": "dns"}));
    assert!(engine.evaluate(&json!({"type": "dns"})).cached);
}

#[test]
fn limits_stop_pathological_rules_and_others_still_run() {
    let spin = "  some i in numbers.range(1, 200000)\n  i < 0\n  msg := \"never\"";
    let dir = rules_dir(&[
        ("spin.rego", &rule("spin", "[\"open\"]", "low", spin)),
        ("ok.rego", &rule("ok", "[\"open\"]", "low", "  msg := \"ok\"")),
    ]);
    let mut cfg = config_for(&[dir.path()]);
    cfg.max_instructions = 10_000;
    cfg.eval_timeout_us = 0;
    let mut engine = PolicyEngine::load(&cfg, &[]).unwrap();
    for _ in 0..2 {
        let eval = engine.evaluate(&open_event("/bin/cat", "/x"));
        assert_eq!(eval.alerts.len(), 1);
        assert_eq!(eval.alerts[0].rule, "ok");
        assert_eq!(eval.errors.len(), 1);
        assert_eq!((eval.errors[0].rule.as_str(), eval.errors[0].kind), ("spin", RuntimeErrorKind::Limit));
        assert!(!eval.cached, "failed evaluations are not cached");
    }
    let c = engine.counters();
    assert_eq!((c.limit_hits, c.runtime_errors), (2, 2));
    assert_eq!(c.rule_errors.get("spin"), Some(&2));

    // The wall-clock budget alone also stops it.
    cfg.max_instructions = 0;
    cfg.eval_timeout_us = 200;
    let mut engine = PolicyEngine::load(&cfg, &[]).unwrap();
    let start = std::time::Instant::now();
    let eval = engine.evaluate(&open_event("/bin/cat", "/x"));
    assert_eq!(eval.errors.len(), 1, "{eval:?}");
    assert_eq!(eval.errors[0].kind, RuntimeErrorKind::Limit);
    assert!(eval.errors[0].message.to_lowercase().contains("time"), "{:?}", eval.errors[0]);
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn runtime_errors_are_counted_per_rule() {
    let dir = rules_dir(&[
        (
            "shape.rego",
            "package sensor.rules.shape\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"low\", \"events\": [\"open\"]}\nalert contains 42 if true\n",
        ),
        // regorus 0.14's RVM turns builtin type errors inside a rule body into
        // `undefined` (the interpreter, used by `policy test`, reports them): the
        // rule stays quiet, nothing panics and the other rules still run.
        (
            "typeerr.rego",
            &rule("typeerr", "[\"open\"]", "low", "  n := to_number(input.file.path)\n  msg := sprintf(\"%d\", [n])"),
        ),
        ("ok.rego", &rule("ok", "[\"open\"]", "low", "  msg := \"ok\"")),
    ]);
    let mut engine = PolicyEngine::load(&config_for(&[dir.path()]), &[]).unwrap();
    for _ in 0..3 {
        let eval = engine.evaluate(&open_event("/bin/cat", "/not/a/number"));
        assert_eq!(eval.alerts.len(), 1, "{eval:?}");
        assert_eq!(eval.alerts[0].rule, "ok");
        assert_eq!(eval.errors.len(), 1, "{eval:?}");
        assert_eq!((eval.errors[0].rule.as_str(), eval.errors[0].kind), ("shape", RuntimeErrorKind::Error));
        assert!(eval.errors[0].message.contains("`message`"), "{eval:?}");
    }
    let c = engine.counters();
    assert_eq!((c.runtime_errors, c.limit_hits), (3, 0));
    assert_eq!(c.rule_errors.get("shape"), Some(&3));
    assert_eq!(c.evaluations, 3);
}

#[test]
fn engine_is_send() {
    fn is_send<T: Send>() {}
    is_send::<PolicyEngine>();
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<policy::ReloadableEngine>();
    is_send_sync::<PolicySet>();
}

#[test]
fn prefilter_skips_events_that_cannot_match_and_keeps_near_misses() {
    let dir = rules_dir(&[(
        "p.rego",
        &rule(
            "sudoers",
            "[\"open\"]",
            "high",
            "  input.type == \"open\"\n  input.file.path in {\"/etc/sudoers\", \"/etc/sudoers.d/x\"}\n  msg := input.process.exe",
        ),
    )]);
    let mut engine = PolicyEngine::load(&config_for(&[dir.path()]), &[]).unwrap();
    // Provably no alert: answered in Rust, neither the VM nor the cache is consulted.
    let skipped = engine.evaluate(&open_event("/usr/bin/cat", "/etc/sudoersX"));
    assert!(skipped.alerts.is_empty() && skipped.errors.is_empty() && !skipped.cached);
    let c = engine.counters();
    assert_eq!((c.cache_hits, c.cache_misses, c.evaluations), (0, 0, 1));
    // A near miss in every other field still runs the rule and alerts.
    let hit = engine.evaluate(&open_event("/usr/bin/vi", "/etc/sudoers.d/x"));
    assert_eq!(hit.alerts.len(), 1, "{hit:?}");
    assert_eq!(hit.alerts[0].message, "/usr/bin/vi");
    assert_eq!(engine.counters().cache_misses, 1);
    // A missing field is undefined in Rego: no alert, skipped too.
    let mut no_path = open_event("/usr/bin/vi", "/etc/sudoers");
    no_path["file"].as_object_mut().unwrap().remove("path");
    assert!(engine.evaluate(&no_path).alerts.is_empty());
    assert_eq!(engine.counters().cache_misses, 1);
}
