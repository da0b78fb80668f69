//! Evaluation throughput of a realistic event mix against the default rules (53
//! when this was written, plus the anomaly rules since) and 26 generated ones in
//! the same style, then an interleaved A/B table (median events/s) and the ten most
//! expensive rules of the mix, each run alone.
//!
//! `cargo bench -p policy --bench eval`; only the A/B and rule tables (no
//! criterion runs): `cargo bench -p policy --bench eval -- none`. Knobs (env):
//! AB_ROUNDS, AB_ONLY, EVAL_AB_RULES (before/after of a rule change),
//! RULE_COSTS_TOP, EVAL_RULES_DIR, EVAL_DISABLE, and EVAL_PROFILE / EVAL_TYPE /
//! EVAL_PREFILTERS for profilers (see below).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use policy::{PolicyConfig, PolicyEngine, RuleOverride};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn rule(id: &str, events: &str, severity: &str, body: &str) -> String {
    format!(
        "package sensor.rules.{id}\nimport rego.v1\nmetadata := {{\"title\": \"{id}\", \"severity\": \"{severity}\", \"events\": {events}, \"mitre\": [\"T1059\"]}}\nalert contains {{\"message\": msg}} if {{\n{body}\n}}\n"
    )
}

/// 26 generated rules, loaded next to the default set (62 rules today: 88 in all).
fn extra_rules(dir: &Path) {
    let sensitive = [
        "/etc/sudoers",
        "/root/.ssh/authorized_keys",
        "/etc/ld.so.preload",
        "/etc/pam.d/common-auth",
        "/root/.bash_history",
        "/etc/crontab",
        "/var/spool/cron/root",
        "/etc/security/opasswd",
    ];
    for (i, p) in sensitive.iter().enumerate() {
        write(
            dir,
            &format!("open_{i}.rego"),
            &rule(
                &format!("open_{i}"),
                "[\"open\"]",
                "medium",
                &format!(
                    "  input.type == \"open\"\n  input.file.path == \"{p}\"\n  not input.process.exe in data.sensor.lists.shadow_readers\n  msg := sprintf(\"%s opened %s\", [input.process.exe, input.file.path])"
                ),
            ),
        );
    }
    for (i, d) in ["/etc/systemd/", "/boot/", "/lib/modules/", "/usr/lib/x86_64-linux-gnu/security/"].iter().enumerate()
    {
        write(
            dir,
            &format!("write_{i}.rego"),
            &rule(
                &format!("write_{i}"),
                "[\"open\"]",
                "high",
                &format!(
                    "  input.type == \"open\"\n  startswith(input.file.path, \"{d}\")\n  some f in input.file.flags\n  f in {{\"O_WRONLY\", \"O_RDWR\"}}\n  msg := sprintf(\"%s wrote %s\", [input.process.exe, input.file.path])"
                ),
            ),
        );
    }
    for (i, tool) in ["nc", "ncat", "nmap", "socat", "tcpdump", "masscan"].iter().enumerate() {
        write(
            dir,
            &format!("exec_{i}.rego"),
            &rule(
                &format!("exec_{i}"),
                "[\"exec\"]",
                "medium",
                &format!(
                    "  input.type == \"exec\"\n  input.process.comm == \"{tool}\"\n  msg := sprintf(\"%s run with %v\", [input.process.exe, input.process.args])"
                ),
            ),
        );
    }
    write(
        dir,
        "exec_b64.rego",
        &rule(
            "exec_b64",
            "[\"exec\"]",
            "high",
            "  input.type == \"exec\"\n  some a in input.process.args\n  contains(a, \"base64 -d\")\n  msg := \"base64 decode piped\"",
        ),
    );
    for (i, port) in [4444, 1337, 6667].iter().enumerate() {
        write(
            dir,
            &format!("net_{i}.rego"),
            &rule(
                &format!("net_{i}"),
                "[\"connect\"]",
                "high",
                &format!(
                    "  input.type == \"connect\"\n  input.net.dport == {port}\n  msg := sprintf(\"%s -> %s:%d\", [input.process.exe, input.net.daddr, input.net.dport])"
                ),
            ),
        );
    }
    write(
        dir,
        "log_unlink.rego",
        &rule(
            "log_unlink",
            "[\"unlink\", \"rename\"]",
            "high",
            "  startswith(input.file.path, \"/var/log/\")\n  msg := sprintf(\"%s removed %s\", [input.process.exe, input.file.path])",
        ),
    );
    write(
        dir,
        "chmod_tmp.rego",
        &rule(
            "chmod_tmp",
            "[\"chmod\"]",
            "medium",
            "  startswith(input.file.path, \"/tmp/\")\n  msg := sprintf(\"chmod %s\", [input.file.path])",
        ),
    );
    write(
        dir,
        "dns_tld.rego",
        &rule("dns_tld", "[\"dns\"]", "low", "  endswith(input.dns.query, \".onion\")\n  msg := input.dns.query"),
    );
    write(
        dir,
        "lineage.rego",
        &rule(
            "lineage",
            "[\"exec\"]",
            "medium",
            "  input.type == \"exec\"\n  \"/usr/sbin/nginx\" in input.process.lineage\n  input.process.exe in data.sensor.lists.shells\n  msg := \"web server spawned a shell\"",
        ),
    );
}

const PORTS: [u16; 3] = [80, 443, 5432];

fn process(pid: u64, exe: &str, args: &[&str], container: Option<&str>) -> Value {
    json!({"pid": pid, "tid": pid, "ppid": 1, "uid": 1000, "euid": 1000, "gid": 1000, "egid": 1000,
        "comm": exe.rsplit('/').next().unwrap(), "exe": exe, "args": args, "cwd": "/home/u",
        "container_id": container, "lineage": ["/usr/bin/bash", "/usr/sbin/sshd"]})
}

/// `n` events: ~50% open, 15% exec, 15% connect, 10% close, 10% others, with many
/// distinct programs and paths (unique ts and pid on every event).
fn event_mix(n: usize) -> Vec<Value> {
    let exes = [
        "/usr/bin/cat",
        "/usr/bin/python3",
        "/usr/sbin/nginx",
        "/usr/bin/node",
        "/usr/bin/ls",
        "/usr/bin/git",
        "/usr/bin/curl",
        "/usr/lib/postgresql/bin/postgres",
    ];
    let paths = [
        "/etc/passwd",
        "/etc/hosts",
        "/var/lib/app/db.sqlite",
        "/proc/self/stat",
        "/etc/ld.so.cache",
        "/home/u/.cache/x",
        "/etc/ssl/certs/ca.pem",
        "/usr/lib/libc.so.6",
        "/etc/nsswitch.conf",
        "/tmp/build/out.o",
    ];
    // About 1% of events are suspicious, as on a real host.
    let suspicious = ["/etc/shadow", "/etc/sudoers", "/root/.ssh/authorized_keys"];
    (0..n)
        .map(|i| {
            let ts = format!("2026-11-25T17:04:41.{i:09}Z");
            let exe = exes[(i * 7) % exes.len()];
            let pid = 1000 + i as u64;
            let container = (i % 3 == 0).then_some("3f2a9c");
            match i % 20 {
                0..=9 => json!({"ts": ts, "host": "h", "type": "open",
                    "process": process(pid, exe, &[exe], container),
                    "file": {"path": if i % 97 == 0 { suspicious[i % 3] } else { paths[(i * 3) % paths.len()] }, "raw_path": "x", "flags": ["O_RDONLY"], "mode": 0, "result": 3}}),
                10..=12 => json!({"ts": ts, "host": "h", "type": "exec",
                    "process": process(pid, exe, &[exe, "-c", "true"], container)}),
                13..=15 => json!({"ts": ts, "host": "h", "type": "connect",
                    "process": process(pid, exe, &[exe], container),
                    "net": {"proto": "tcp", "family": "ipv4", "saddr": "10.0.0.5", "sport": 40000 + (i % 1000),
                        "daddr": format!("10.0.{}.{}", i % 7, i % 11), "dport": if i % 89 == 0 { 4444 } else { PORTS[i % 3] }, "direction": "outbound"}}),
                16..=17 => json!({"ts": ts, "host": "h", "type": "close",
                    "process": process(pid, exe, &[exe], container)}),
                18 => json!({"ts": ts, "host": "h", "type": "unlink",
                    "process": process(pid, exe, &[exe], container),
                    "file": {"path": format!("/var/tmp/f{}", i % 13), "raw_path": "x", "flags": [], "mode": 0, "result": 0}}),
                _ => json!({"ts": ts, "host": "h", "type": "dns",
                    "process": process(pid, exe, &[exe], container),
                    "dns": {"query": format!("host{}.example.com", i % 17)}}),
            }
        })
        .collect()
}

fn engine(cache_size: usize, dir: &Path) -> PolicyEngine {
    // EVAL_RULES_DIR=DIR benchmarks a variant of the default rules (experiments).
    let rules = std::env::var_os("EVAL_RULES_DIR").map(std::path::PathBuf::from);
    engine_with(cache_size, dir, rules)
}

fn engine_with(cache_size: usize, dir: &Path, rules: Option<std::path::PathBuf>) -> PolicyEngine {
    let default_rules = rules.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/default"));
    // EVAL_DISABLE=id,id: those rules off (marginal cost of a rule with EVAL_PROFILE).
    let overrides = std::env::var("EVAL_DISABLE")
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| (id.to_string(), RuleOverride { enabled: Some(false), ..RuleOverride::default() }))
        .collect();
    let cfg = PolicyConfig {
        default_rules: false,
        rules_dirs: vec![default_rules, dir.to_path_buf()],
        cache_size,
        watch: false,
        overrides,
        ..PolicyConfig::default()
    };
    let engine = PolicyEngine::load(&cfg, &[]).unwrap_or_else(|e| panic!("{e}"));
    // The default set grows (53 at first, 62 with the anomaly rules), plus 26 here.
    assert!(engine.policy_set().rules().len() >= 88);
    engine
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    extra_rules(dir.path());
    // 512 events (~1 MiB of JSON) stay in L2, as an event just built by the
    // enrichment stage would be; a colder working set costs more in JSON map lookups.
    let events = event_mix(512);
    // EVAL_PROFILE=N: only evaluate the mix N times uncached (prefilters on, or off
    // with EVAL_PREFILTERS=0), for a profiler such as
    // `valgrind --tool=callgrind --toggle-collect='*PolicyEngine::evaluate*'`.
    if let Some(rounds) = std::env::var("EVAL_PROFILE").ok().and_then(|v| v.parse::<usize>().ok()) {
        let mut engine = engine(0, dir.path());
        engine.set_prefilters(std::env::var("EVAL_PREFILTERS").as_deref() != Ok("0"));
        // EVAL_TYPE=exec: only the events of one type.
        let only = std::env::var("EVAL_TYPE").ok();
        let events: Vec<&Value> =
            events.iter().filter(|e| only.as_deref().is_none_or(|t| e["type"].as_str() == Some(t))).collect();
        for _ in 0..rounds {
            for &e in &events {
                black_box(engine.evaluate(black_box(e)));
            }
        }
        return;
    }
    let mut group = c.benchmark_group("eval");
    group.throughput(Throughput::Elements(events.len() as u64));

    // Every event evaluated by the VM (cache off).
    let mut uncached = engine(0, dir.path());
    let alerts: usize = events.iter().map(|e| uncached.evaluate(e).alerts.len()).sum();
    assert!(alerts > 0, "the mix must raise some alerts");
    group.bench_function("mix_default_plus_26_rules_no_cache", |b| {
        b.iter(|| {
            for e in &events {
                black_box(uncached.evaluate(black_box(e)));
            }
        })
    });

    // Steady state of the decision cache: the same programs touching the same files,
    // differing only in ts/pid (which the rules do not read).
    let mut cached = engine(8192, dir.path());
    for e in &events {
        cached.evaluate(e);
    }
    group.bench_function("mix_default_plus_26_rules_cache_hits", |b| {
        b.iter(|| {
            for e in &events {
                black_box(cached.evaluate(black_box(e)));
            }
        })
    });
    ab_report(&events, dir.path());
    rule_cost_report(&events, dir.path());
    let c = cached.counters();
    eprintln!(
        "cache: {} hits, {} misses; uncached run raised {alerts} alerts per {} events",
        c.cache_hits,
        c.cache_misses,
        events.len()
    );
    group.finish();
}

/// Interleaved A/B of the static pre-filters (on vs off) on this noisy shared
/// machine: rounds alternate the variants so load changes hit both alike; prints
/// the median throughput of each.
///
/// `EVAL_AB_RULES=DIR` adds the uncached variants over the rules of DIR (e.g. an
/// older rules/default from `git archive`), for a before/after of a rule change in
/// the same run.
fn ab_report(events: &[Value], dir: &Path) {
    let b_rules = std::env::var_os("EVAL_AB_RULES").map(std::path::PathBuf::from);
    let mut variants: Vec<(&str, usize, bool, Option<std::path::PathBuf>)> = vec![
        ("no_cache, prefilters on ", 0, true, None),
        ("no_cache, prefilters off", 0, false, None),
        ("cache,    prefilters on ", 8192, true, None),
        ("cache,    prefilters off", 8192, false, None),
    ];
    if let Some(b) = &b_rules {
        variants.push(("EVAL_AB_RULES no_cache, prefilters on ", 0, true, Some(b.clone())));
        variants.push(("EVAL_AB_RULES no_cache, prefilters off", 0, false, Some(b.clone())));
    }
    let mut engines: Vec<PolicyEngine> = variants
        .iter()
        .map(|(_, cache, on, rules)| {
            let (cache, on) = (*cache, *on);
            let mut e = match rules {
                Some(r) => engine_with(cache, dir, Some(r.clone())),
                None => engine(cache, dir),
            };
            e.set_prefilters(on);
            events.iter().for_each(|ev| drop(e.evaluate(ev)));
            e
        })
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    // AB_ONLY=i runs variant i alone (for profiling).
    let only: Option<usize> = std::env::var("AB_ONLY").ok().and_then(|v| v.parse().ok());
    let rounds: usize = std::env::var("AB_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(15);
    for _ in 0..rounds {
        for (i, (engine, rates)) in engines.iter_mut().zip(rates.iter_mut()).enumerate() {
            if only.is_some_and(|o| o != i) {
                rates.push(0.0);
                continue;
            }
            // At least 50 ms per variant and round.
            let (mut reps, start) = (0, std::time::Instant::now());
            while reps == 0 || start.elapsed() < std::time::Duration::from_millis(50) {
                for e in events {
                    black_box(engine.evaluate(black_box(e)));
                }
                reps += 1;
            }
            rates.push((reps * events.len()) as f64 / start.elapsed().as_secs_f64());
        }
    }
    for ((name, _, _, _), mut r) in variants.iter().zip(rates) {
        r.sort_by(f64::total_cmp);
        eprintln!("A/B {name}: median {:>9.0} events/s (min {:.0}, max {:.0})", r[r.len() / 2], r[0], r[r.len() - 1]);
    }
}

/// The most expensive rules of the mix, each run alone on the VM (the next thing to
/// look at when the set gets slower). `RULE_COSTS_TOP=N` lists N (default 10).
fn rule_cost_report(events: &[Value], dir: &Path) {
    let top: usize = std::env::var("RULE_COSTS_TOP").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let mut engine = engine(0, dir);
    let mut costs = engine.profile_rules(events, 5);
    costs.sort_by(|a, b| b.us_per_run().total_cmp(&a.us_per_run()));
    let total: f64 = costs.iter().map(|c| c.us_per_run() * c.events as f64).sum::<f64>() / events.len() as f64;
    let filtered: f64 =
        costs.iter().map(|c| c.us_per_event_filtered() * c.events as f64).sum::<f64>() / events.len() as f64;
    eprintln!(
        "rule costs (each rule alone on the VM): sum {total:.1} us/event unfiltered, {filtered:.1} us/event after pre-filters"
    );
    eprintln!("  {:<46} {:>9} {:>8} {:>12}", "rule", "us/run", "events", "passes filter");
    for c in costs.iter().take(top) {
        eprintln!("  {:<46} {:>9.2} {:>8} {:>12}", c.rule, c.us_per_run(), c.events, c.prefilter_passes);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
