mod common;

use common::*;
use policy::{PolicyCommand, RuleSourceArgs, run_cli, run_tests};

#[test]
fn test_runner_reports_each_test() {
    let report = run_tests(&[], &[default_rules_dir()], None).unwrap();
    assert!(report.results.len() >= 10);
    assert_eq!(report.failed(), 0, "{:#?}", report.results.iter().filter(|r| !r.passed).collect::<Vec<_>>());

    let dir = rules_dir(&[
        ("a.rego", &rule("a", "[\"open\"]", "low", "  input.file.path == \"/x\"\n  msg := \"hit\"")),
        (
            "a_test.rego",
            "package sensor.rules.a_test\nimport rego.v1\nimport data.sensor.rules.a\n\
             test_hit if { count(a.alert) == 1 with input as {\"type\": \"open\", \"file\": {\"path\": \"/x\"}} }\n\
             test_wrong if { count(a.alert) == 1 with input as {\"type\": \"open\", \"file\": {\"path\": \"/y\"}} }\n\
             test_error if { to_number(\"nan?\") == 1 }\n\
             helper := 1\n",
        ),
    ]);
    let report = run_tests(&[], &[dir.path().to_path_buf()], None).unwrap();
    let outcome: Vec<_> = report.results.iter().map(|r| (r.name.rsplit('.').next().unwrap(), r.passed)).collect();
    assert_eq!(outcome, [("test_hit", true), ("test_wrong", false), ("test_error", false)]);
    assert!(report.results[1].failure.as_ref().unwrap().contains("undefined"));
    assert!(report.results[2].failure.as_ref().unwrap().contains("error"));
    assert_eq!((report.passed(), report.failed()), (1, 2));

    let filtered = run_tests(&[], &[dir.path().to_path_buf()], Some("hit")).unwrap();
    assert_eq!(filtered.results.len(), 1);
}

#[test]
fn cli_exit_codes() {
    let good = rules_dir(&[("a.rego", &rule("a", "[\"open\"]", "low", "  msg := \"hit\""))]);
    let bad = rules_dir(&[("a.rego", &rule("a", "[\"opne\"]", "low", "  msg := \"hit\""))]);
    let check = |dir: &tempfile::TempDir| run_cli(PolicyCommand::Check { dirs: vec![dir.path().into()] }, &[]).unwrap();
    assert_eq!(check(&good), 0);
    assert_eq!(check(&bad), 1);
    // A broken test file fails `check` too.
    write(good.path(), "a_test.rego", "package x\ntest_a if {\n");
    assert_eq!(check(&good), 1);
    std::fs::remove_file(good.path().join("a_test.rego")).unwrap();

    // No DIR: the embedded set.
    let embedded = [(
        "a.rego",
        "package sensor.rules.a\nimport rego.v1\nmetadata := {\"title\": \"t\", \"severity\": \"low\", \"events\": [\"open\"]}\nalert contains \"m\" if true\n",
    )];
    assert_eq!(run_cli(PolicyCommand::Check { dirs: vec![] }, &embedded).unwrap(), 0);
    assert_eq!(run_cli(PolicyCommand::Test { dirs: vec![default_rules_dir()], run: None }, &[]).unwrap(), 0);

    let events = rules_dir(&[("ev.json", &open_event("/bin/cat", "/x").to_string())]);
    let eval = PolicyCommand::Eval {
        event: events.path().join("ev.json"),
        source: RuleSourceArgs { rules: vec![good.path().into()], no_default_rules: true, overrides: None },
    };
    assert_eq!(run_cli(eval, &[]).unwrap(), 0);
    let missing = PolicyCommand::Eval { event: events.path().join("missing.json"), source: RuleSourceArgs::default() };
    assert!(run_cli(missing, &embedded).is_err());
    let list = PolicyCommand::List { source: RuleSourceArgs::default(), json: true };
    assert_eq!(run_cli(list, &embedded).unwrap(), 0);
}
