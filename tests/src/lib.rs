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
            log: Mutex::new(EventLog { reader: None, offset: 0, partial: String::new(), events: Vec::new() }),
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
        if let Some(mut c) = self.child.lock().unwrap().take() {
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
