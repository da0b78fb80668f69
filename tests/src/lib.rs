//! Harness for end-to-end tests: runs the real `sensor` binary (as root, with
//! real eBPF) and reads the events it writes.
//!
//! Kernel tests fail loudly: if the sensor does not print `sensor ready`, the
//! test panics with everything the sensor said.

use serde_json::Value;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The sensor binary: $SENSOR_BIN, else target/<profile>/sensor next to this test binary.
pub fn sensor_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SENSOR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> -> target/debug/sensor
    let mut dir = exe.parent().expect("deps dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("sensor");
    assert!(
        bin.exists(),
        "sensor binary not found at {}: run `cargo build -p sensor` first (make test does)",
        bin.display()
    );
    bin
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Panics unless root: kernel tests must not silently pass without eBPF.
pub fn require_root() {
    assert!(is_root(), "kernel tests need root (eBPF); run `sudo make test`");
}

/// A fresh directory for one test, under `root`.
pub fn test_dir(root: &Path, name: &str) -> PathBuf {
    let d = root.join(format!("{name}-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}

struct EventLog {
    /// Lines that fail this cheap test are skipped unparsed (a whole-machine
    /// sensor writes far more than a test needs to keep in memory).
    keep_line: Option<fn(&str) -> bool>,
    reader: Option<BufReader<std::fs::File>>,
    offset: u64,
    partial: String,
    events: Vec<Value>,
}

/// A running sensor writing events to a file.
pub struct Sensor {
    child: Mutex<Option<Child>>,
    pub pid: u32,
    pub dir: PathBuf,
    pub events_path: PathBuf,
    pub stderr_path: PathBuf,
    log: Mutex<EventLog>,
}

impl Sensor {
    pub fn audit_db(&self) -> PathBuf {
        self.dir.join("audit.db")
    }
}

impl Sensor {
    /// Starts `sensor run` with the given config text and waits for `sensor ready`.
    pub fn start(config: &str, extra_args: &[&str]) -> Sensor {
        Self::start_keeping(config, extra_args, None)
    }

    /// Like `start`, but only lines passing `keep_line` are parsed and kept
    /// (see `shared_with_default_rules`); `scan_file` still sees every line.
    pub fn start_keeping(config: &str, extra_args: &[&str], keep_line: Option<fn(&str) -> bool>) -> Sensor {
        require_root();
        let dir = std::env::temp_dir().join(format!("sensor-run-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let config_path = dir.join("sensor.toml");
        std::fs::write(&config_path, config).unwrap();
        let events_path = dir.join("events.jsonl");
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(sensor_bin());
        cmd.arg("run").arg("--config").arg(&config_path).arg("--events-out").arg(&events_path);
        // never the host's /var/lib/sensor: every sensor under test has its own trail
        cmd.arg("--audit-db").arg(dir.join("audit.db"));
        cmd.args(extra_args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        cmd.env("SENSOR_LOG", "info");
        // the sensor must not outlive the test process
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn sensor");
        let pid = child.id();
        let s = Sensor {
            child: Mutex::new(Some(child)),
            pid,
            dir,
            events_path,
            stderr_path,
            log: Mutex::new(EventLog {
                keep_line,
                reader: None,
                offset: 0,
                partial: String::new(),
                events: Vec::new(),
            }),
        };
        s.wait_ready(Duration::from_secs(120));
        s
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn wait_ready(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.stderr().contains("sensor ready") {
                return;
            }
            if let Some(child) = self.child.lock().unwrap().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "sensor exited ({status}) before it was ready; eBPF could not load?\nstderr:\n{}",
                    self.stderr()
                );
            }
            if start.elapsed() > timeout {
                panic!("sensor not ready after {timeout:?}\nstderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Reads events written since the last call.
    fn refresh(&self) {
        let mut log = self.log.lock().unwrap();
        if log.reader.is_none() {
            let Ok(f) = std::fs::File::open(&self.events_path) else { return };
            log.reader = Some(BufReader::new(f));
        }
        let offset = log.offset;
        let mut new_lines = Vec::new();
        {
            let reader = log.reader.as_mut().unwrap();
            reader.seek(SeekFrom::Start(offset)).unwrap();
            let mut line = String::new();
            let mut consumed = 0u64;
            loop {
                line.clear();
                let n = reader.read_line(&mut line).unwrap();
                if n == 0 {
                    break;
                }
                consumed += n as u64;
                new_lines.push(line.clone());
            }
            log.offset += consumed;
        }
        for l in new_lines {
            let full = std::mem::take(&mut log.partial) + &l;
            if !full.ends_with('\n') {
                log.partial = full;
                continue;
            }
            if log.keep_line.is_some_and(|keep| !keep(&full)) {
                continue;
            }
            let v: Value = serde_json::from_str(full.trim_end())
                .unwrap_or_else(|e| panic!("sensor wrote invalid JSON ({e}): {full}"));
            log.events.push(v);
        }
    }

    /// All events so far that match.
    pub fn matching(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.refresh();
        self.log.lock().unwrap().events.iter().filter(|e| pred(e)).cloned().collect()
    }

    /// Waits for the first event that matches; panics with context on timeout.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_timeout(what, Duration::from_secs(20), pred)
    }

    pub fn wait_for_timeout(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(e) = self.matching(&pred).into_iter().next() {
                return e;
            }
            if start.elapsed() > timeout {
                let n = self.log.lock().unwrap().events.len();
                panic!("no event for {what} after {timeout:?} ({n} events seen)\nsensor stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig`, waits for exit, returns the exit status and stderr.
    pub fn stop_with(&self, sig: i32) -> (std::process::ExitStatus, String) {
        let mut guard = self.child.lock().unwrap();
        let mut child = guard.take().expect("sensor already stopped");
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().expect("wait sensor");
        (status, self.stderr())
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        // a panic while the lock was held (wait_ready) must not turn into an abort here
        if let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Root of the directories the shared sensor watches.
pub fn shared_root() -> PathBuf {
    PathBuf::from(format!("/tmp/sensor-e2e-{}", std::process::id()))
}

/// One sensor for all tests of a test binary: loading and verifying the
/// programs takes seconds, so tests share it and tell their events apart by
/// pid and by unique paths. File events are limited (in the kernel) to
/// `shared_root()`, which also exercises the watch filter.
pub fn shared() -> &'static Sensor {
    static SHARED: OnceLock<Sensor> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = shared_root();
        std::fs::create_dir_all(&root).unwrap();
        let config = format!(
            "[kernel.file_filter]\nwatch_prefixes = [\"{}/\"]\nwatch_only = true\n[pipeline]\nstats_interval_secs = 0\n",
            root.display()
        );
        // PDEATHSIG fires when the spawning *thread* exits; spawn from a
        // thread that lives as long as the test process.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let s = std::panic::catch_unwind(|| Sensor::start(&config, &[]));
            tx.send(s).unwrap();
            loop {
                std::thread::park();
            }
        });
        match rx.recv().unwrap() {
            Ok(s) => s,
            Err(e) => std::panic::resume_unwind(e),
        }
    })
}

/// `v[a][b]...` as a string, or "".
pub fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).as_str().unwrap_or("")
}

pub fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |acc, k| &acc[*k])
}

pub fn u(v: &Value, path: &[&str]) -> u64 {
    get(v, path).as_u64().unwrap_or(u64::MAX)
}

pub mod rules;

/// How long a rule test waits for its alert: the rules sensor sees the whole
/// machine (and whatever else is building or testing on it).
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(30);

impl Sensor {
    /// Every record in the events file (not only the kept ones) that matches,
    /// at most `max`. Reads the whole file: for failure reports.
    pub fn scan_file(&self, max: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let Ok(f) = std::fs::File::open(&self.events_path) else { return Vec::new() };
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if pred(&v) {
                out.push(v);
                if out.len() >= max {
                    break;
                }
            }
        }
        out
    }

    /// Waits for an alert of rule `rule` whose triggering event matches
    /// `event_pred`; on timeout panics with the matching events and the rules
    /// that did fire on them, so a failure says whether the event or the rule
    /// is missing.
    pub fn wait_for_alert(&self, rule: &str, event_pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_alert_where(rule, |a| s(a, &["rule"]) == rule, event_pred)
    }

    /// `wait_for_alert` with any test on the alert record (`what` names it in
    /// the failure message).
    pub fn wait_for_alert_where(
        &self,
        what: &str,
        alert_pred: impl Fn(&Value) -> bool,
        event_pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let rule = what;
        let is_it = |e: &Value| s(e, &["type"]) == "alert" && alert_pred(e) && event_pred(&e["event"]);
        let start = Instant::now();
        loop {
            if let Some(a) = self.matching(is_it).into_iter().next() {
                return a;
            }
            if start.elapsed() > ALERT_TIMEOUT {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let events = self.scan_file(6, |e| s(e, &["type"]) != "alert" && event_pred(e));
        let others: Vec<String> = self
            .matching(|e| s(e, &["type"]) == "alert" && event_pred(&e["event"]))
            .iter()
            .map(|a| format!("{} ({}): {}", s(a, &["rule"]), s(a, &["severity"]), s(a, &["message"])))
            .collect();
        let shown: Vec<String> = events.iter().map(|e| truncate(&e.to_string(), 1500)).collect();
        panic!(
            "no `{rule}` alert after {ALERT_TIMEOUT:?}.\nalerts of other rules on matching events: {others:#?}\n\
             matching events ({} shown; none means the sensor did not report the behaviour):\n{}\n\
             sensor stderr naming {rule}:\n{}\nsensor stderr (tail):\n{}",
            shown.len(),
            shown.join("\n"),
            self.stderr().lines().filter(|l| l.contains(rule)).take(5).collect::<Vec<_>>().join("\n"),
            tail(&self.stderr(), 2000)
        );
    }

    /// Asserts that no alert of rule `rule` was raised on an event matching
    /// `event_pred`, after waiting `wait` (`Duration::ZERO` once a later event
    /// of the same test has been seen: the pipeline keeps kernel order).
    pub fn no_alert(&self, rule: &str, wait: Duration, event_pred: impl Fn(&Value) -> bool) {
        std::thread::sleep(wait);
        let got = self.matching(|e| s(e, &["type"]) == "alert" && s(e, &["rule"]) == rule && event_pred(&e["event"]));
        assert!(got.is_empty(), "near-miss raised `{rule}`: {:#?}", got);
    }
}

fn truncate(t: &str, n: usize) -> String {
    if t.len() <= n {
        return t.to_string();
    }
    let mut end = n;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &t[..end])
}

fn tail(t: &str, n: usize) -> &str {
    let mut start = t.len().saturating_sub(n);
    while !t.is_char_boundary(start) {
        start += 1;
    }
    &t[start..]
}

/// The sensor for the default-rule tests: embedded default rules, default
/// file filters (file events everywhere, as a user gets them), audit on.
/// Only alert records are kept in memory.
///
/// `SENSOR_E2E_RULES_DIR=DIR` (development aid, unset in CI) runs the rules
/// of DIR instead of the embedded ones, so rule edits need no rebuild.
pub fn shared_with_default_rules() -> &'static Sensor {
    static SHARED: OnceLock<Sensor> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut config = String::from("[pipeline]\nstats_interval_secs = 0\n[policy]\n");
        let mut args: Vec<String> = Vec::new();
        if let Ok(dir) = std::env::var("SENSOR_E2E_RULES_DIR") {
            config.push_str("default_rules = false\n");
            args.push("--rules".into());
            args.push(dir);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        // PDEATHSIG fires when the spawning thread exits (see `shared`)
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let s = std::panic::catch_unwind(|| {
                Sensor::start_keeping(&config, &args, Some(|l: &str| l.contains("\"type\":\"alert\"")))
            });
            tx.send(s).unwrap();
            loop {
                std::thread::park();
            }
        });
        match rx.recv().unwrap() {
            Ok(s) => {
                // a whole-machine sensor writes hundreds of MB: remove its
                // directory when the test process exits (SENSOR_E2E_KEEP=1 keeps it)
                let _ = RULES_SENSOR_DIR.set(s.dir.clone());
                // SAFETY: registers a plain extern "C" fn with no captured state.
                unsafe { libc::atexit(remove_rules_sensor_dir) };
                s
            }
            Err(e) => std::panic::resume_unwind(e),
        }
    })
}

static RULES_SENSOR_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_rules_sensor_dir() {
    if std::env::var_os("SENSOR_E2E_KEEP").is_none()
        && let Some(d) = RULES_SENSOR_DIR.get()
    {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Throwaway network namespaces and the servers the tests run in them.
pub mod netns {
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    /// Runs `ip ARGS`, failing the test with its stderr.
    pub fn ip(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("iproute2");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A network namespace joined to the host by a veth pair, host end
    /// 10.`net`.`subnet`.1 and namespace end .2; removed on drop.
    pub struct Netns {
        pub name: String,
        pub host_if: String,
        pub peer_if: String,
    }

    impl Netns {
        /// `tag` (a few letters) keeps tests of different files apart.
        pub fn new(tag: &str, net: u8, subnet: u8) -> Netns {
            let id = std::process::id() % 100_000;
            let n = Netns {
                name: format!("sensor-{tag}{net}-{id}"),
                host_if: format!("{tag:.2}{net}-{id}a"),
                peer_if: format!("{tag:.2}{net}-{id}b"),
            };
            let _ = Command::new("ip").args(["netns", "del", &n.name]).output();
            ip(&["netns", "add", &n.name]);
            ip(&["link", "add", &n.host_if, "type", "veth", "peer", "name", &n.peer_if]);
            ip(&["link", "set", &n.peer_if, "netns", &n.name]);
            ip(&["addr", "add", &format!("10.{net}.{subnet}.1/24"), "dev", &n.host_if]);
            ip(&["link", "set", &n.host_if, "up"]);
            ip(&["-n", &n.name, "addr", "add", &format!("10.{net}.{subnet}.2/24"), "dev", &n.peer_if]);
            ip(&["-n", &n.name, "link", "set", &n.peer_if, "up"]);
            ip(&["-n", &n.name, "link", "set", "lo", "up"]);
            n
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
            let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        }
    }

    /// A server stopped on drop: SIGTERM first, so nginx and postgres stop
    /// their workers too (SIGKILL would orphan them), then SIGKILL.
    pub struct Killed(pub Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
