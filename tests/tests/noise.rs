//! The default rules stay quiet on ordinary work: a developer's day (build C
//! and Rust programs, query the package database, use git, serve and fetch a
//! page, run unit tests) under the sensor with its embedded defaults raises no
//! alert of severity medium or above.
//!
//! The sensor sees the whole machine, which is shared; the assertion covers
//! the processes this test started (its process tree), so an unrelated
//! process elsewhere cannot make it fail or pass.

use sensor_e2e::{Sensor, get, s, sensor_bin, test_dir, u, unique};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

fn severity_rank(s: &str) -> usize {
    SEVERITIES.iter().position(|x| *x == s).unwrap_or_else(|| panic!("unknown severity {s}"))
}

/// Runs a command to completion; the workload must really have happened, so
/// a failing step fails the test.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.invalid")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.invalid")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(dir: &Path, script: &str) -> String {
    run(dir, "/bin/sh", &["-c", script])
}

fn build_c(dir: &Path) {
    std::fs::write(dir.join("hello.c"), "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n")
        .unwrap();
    std::fs::write(dir.join("Makefile"), "hello: hello.c\n\tcc -O2 -Wall -o hello hello.c\n").unwrap();
    run(dir, "make", &["-s"]);
    assert_eq!(run(dir, "./hello", &[]).trim(), "hello from C");
}

fn build_rust(dir: &Path) {
    std::fs::write(dir.join("main.rs"), "fn main() { println!(\"hello from Rust\"); }\n").unwrap();
    run(dir, "rustc", &["-O", "-o", "hello_rs", "main.rs"]);
    assert_eq!(run(dir, "./hello_rs", &[]).trim(), "hello from Rust");
    // and a cargo project with a unit test, built and tested offline
    run(dir, "cargo", &["new", "--quiet", "--vcs", "none", "app"]);
    let app = dir.join("app");
    std::fs::write(
        app.join("src/main.rs"),
        "fn add(a: u32, b: u32) -> u32 { a + b }\nfn main() { println!(\"{}\", add(2, 3)); }\n\
         #[cfg(test)]\nmod tests { #[test] fn adds() { assert_eq!(super::add(2, 3), 5); } }\n",
    )
    .unwrap();
    assert_eq!(run(&app, "cargo", &["run", "--quiet", "--offline"]).trim(), "5");
    run(&app, "cargo", &["test", "--quiet", "--offline"]);
}

fn query_packages(dir: &Path) {
    assert!(run(dir, "apt-cache", &["policy", "bash"]).contains("Installed"));
    run(dir, "apt-cache", &["show", "coreutils"]);
    run(dir, "apt-cache", &["depends", "git"]);
    assert!(run(dir, "dpkg", &["-S", "/bin/ls"]).contains("coreutils"));
    run(dir, "dpkg", &["-l"]);
    run(dir, "dpkg-query", &["-W", "-f=${Package} ${Version}\n", "bash"]);
}

fn use_git(dir: &Path) {
    let origin = dir.join("origin");
    std::fs::create_dir_all(&origin).unwrap();
    run(&origin, "git", &["init", "--quiet", "-b", "main"]);
    std::fs::write(origin.join("README"), "first\n").unwrap();
    run(&origin, "git", &["add", "README"]);
    run(&origin, "git", &["commit", "--quiet", "-m", "first"]);
    run(dir, "git", &["clone", "--quiet", origin.to_str().unwrap(), "clone"]);
    let clone = dir.join("clone");
    std::fs::write(clone.join("README"), "second\n").unwrap();
    run(&clone, "git", &["commit", "--quiet", "-am", "second"]);
    assert!(run(&clone, "git", &["log", "--oneline"]).lines().count() == 2);
    run(&clone, "git", &["status", "--short"]);
}

fn serve_and_fetch(dir: &Path) {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>noise</h1>\n").unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(&site)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/index.html");
    let start = Instant::now();
    let body = loop {
        let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "http.server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("noise"));
    for _ in 0..5 {
        run(dir, "curl", &["-sf", "-o", "/dev/null", &url]);
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// The newest unit-test executable of one of the project's crates, built by
/// `cargo test` next to this test's own executable.
fn project_test_binary(prefix: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix)
                && !name.contains('.')
                && e.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| panic!("no {prefix}* test executable in {}", deps.display()))
}

fn run_project_tests(dir: &Path) {
    let out = run(dir, sensor_bin().to_str().unwrap(), &["policy", "test"]);
    assert!(out.contains(" passed, 0 failed"), "{out}");
    // the rules crate's unit tests: no e2e test binary shares the name
    let unit_tests = project_test_binary("sensor_rules-");
    run(dir, unit_tests.to_str().unwrap(), &["--test-threads=2", "--quiet"]);
}

/// Pids of this test process and everything it started, from the sensor's
/// own fork and exec events.
fn process_tree(events: &[Value], root: u64) -> HashSet<u64> {
    let mut tree = HashSet::from([root]);
    loop {
        let before = tree.len();
        for e in events {
            let pid = u(e, &["process", "pid"]);
            if tree.contains(&u(e, &["process", "ppid"])) {
                tree.insert(pid);
            }
            if s(e, &["type"]) == "fork" && tree.contains(&pid) {
                tree.insert(u(e, &["fork", "child_pid"]));
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

#[test]
fn ordinary_development_work_raises_no_medium_or_higher_alert() {
    let sensor = Sensor::start("[pipeline]\nstats_interval_secs = 0\n", &[]);
    let dir = test_dir(&std::env::temp_dir(), "sensor-noise");

    type Step = (&'static str, fn(&Path));
    let steps: [Step; 5] = [
        ("build C", build_c),
        ("build Rust", build_rust),
        ("query packages", query_packages),
        ("git", use_git),
        ("serve and fetch", serve_and_fetch),
    ];
    for (name, step) in steps {
        let t = Instant::now();
        step(&dir);
        eprintln!("noise workload: {name} took {:?}", t.elapsed());
    }
    run_project_tests(&dir);
    sh(&dir, "ls -la >/dev/null && cat hello.c | wc -l >/dev/null");

    // a marker after the workload: once it is out, every earlier event and
    // the alerts they raised are too (the pipeline keeps order)
    let marker = format!("noise-done-{}", unique());
    run(&dir, "/bin/echo", &[&marker]);
    sensor.wait_for("the end-of-workload marker", |e| {
        s(e, &["type"]) == "exec" && get(e, &["process", "args"]).get(1).and_then(Value::as_str) == Some(&marker)
    });

    let events = sensor.matching(|_| true);
    let tree = process_tree(&events, std::process::id() as u64);
    assert!(tree.len() > 50, "the workload should have started many processes, saw {}", tree.len());
    let execs = events.iter().filter(|e| s(e, &["type"]) == "exec" && tree.contains(&u(e, &["process", "pid"])));
    eprintln!("noise workload: {} processes, {} execs, {} events in all", tree.len(), execs.count(), events.len());

    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| s(e, &["type"]) == "alert" && tree.contains(&u(e, &["event", "process", "pid"])))
        .collect();
    for a in &ours {
        eprintln!("alert on the workload: [{}] {}: {}", s(a, &["severity"]), s(a, &["rule"]), s(a, &["message"]));
    }
    let loud: Vec<String> = ours
        .iter()
        .filter(|a| severity_rank(s(a, &["severity"])) >= severity_rank("medium"))
        .map(|a| {
            format!("[{}] {}: {}\n  event: {}", s(a, &["severity"]), s(a, &["rule"]), s(a, &["message"]), a["event"])
        })
        .collect();
    assert!(loud.is_empty(), "{} medium+ alerts on ordinary work:\n{}", loud.len(), loud.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
