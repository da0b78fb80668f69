//! The daemon as an operator meets it: configuration errors, privileges,
//! `sensor probe`, in-kernel filters, lost-event accounting, clean shutdown.
//! Each test that needs its own configuration starts its own sensor.

use sensor_e2e::{Sensor, get, s, sensor_bin, test_dir, u, unique};
use std::process::{Command, Stdio};
use std::time::Duration;

fn run_sensor(args: &[&str]) -> (i32, String) {
    let out = Command::new(sensor_bin()).args(args).stdin(Stdio::null()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn unknown_config_key_is_rejected_with_its_name_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[kernel]\npoll_interval_ms = 2\nring_bufer_kib = 4\n").unwrap();
    let (code, err) = run_sensor(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ring_bufer_kib") && err.contains("line 3"), "{err}");
    assert!(err.contains(cfg.to_str().unwrap()), "names the file: {err}");
}

#[test]
fn every_invalid_value_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[kernel]\nevents = [\"exec\", \"teleport\"]\n[kernel.ring_buffer_kib]\nfile = 3\n").unwrap();
    let (code, err) = run_sensor(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("teleport") && err.contains("ring_buffer_kib.file"), "{err}");
}

#[test]
fn corrupt_and_missing_config_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("garbage.toml");
    std::fs::write(&cfg, [0xff, 0xfe, 0x00, 0x9f, b'[', b'x']).unwrap();
    let (code, err) = run_sensor(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("garbage.toml"), "{err}");
    let (code, err) = run_sensor(&["run", "--config", "/nonexistent/sensor.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/sensor.toml") && err.contains("No such file"), "{err}");
}

#[test]
fn running_without_root_says_why() {
    // drop to nobody for the child only
    let mut cmd = Command::new(sensor_bin());
    cmd.args(["run", "--events-out", "none"]).stdin(Stdio::null());
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

#[test]
fn probe_reports_kernel_features_and_mechanisms() {
    sensor_e2e::require_root();
    let out = Command::new(sensor_bin()).args(["probe", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let feature =
        |name: &str| v["features"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned().unwrap_or_default();
    for f in ["btf", "ringbuf", "tracepoint", "tp_btf", "raw_tracepoint", "cgroup_v2"] {
        assert_eq!(feature(f)["available"], true, "{f}: {}", feature(f));
    }
    // these are probed by trying; whatever the answer, it comes with a reason
    for f in ["fentry", "bpf_lsm", "kprobe", "uprobe"] {
        assert!(feature(f)["available"].is_boolean(), "{f} not probed");
        assert!(!s(&feature(f), &["detail"]).is_empty(), "{f} without detail");
    }
    // one mechanism per capability, chosen by loading the sensor's own objects
    let cap = |name: &str| {
        v["capabilities"].as_array().unwrap().iter().find(|c| c["capability"] == name).cloned().unwrap_or_default()
    };
    for c in ["exec", "fork.exit", "file.open", "file.modify", "connect.unix", "connect.tcp", "dns"] {
        assert!(!s(&cap(c), &["mechanism"]).is_empty(), "{c} has no mechanism: {v}");
    }
    assert_eq!(s(&cap("exec"), &["kind"]), "tp_btf");
}

#[test]
fn ignore_prefix_drops_read_only_opens_but_not_writes() {
    let root = std::env::temp_dir().join(format!("sensor-filter-{}", unique()));
    let ignored = root.join("ignored");
    std::fs::create_dir_all(&ignored).unwrap();
    let sensor = Sensor::start(
        &format!(
            "[kernel]\nevents = [\"open\"]\n[kernel.file_filter]\nignore_prefixes = [\"{}/\"]\n",
            ignored.display()
        ),
        &[],
    );
    let quiet = ignored.join("read-me");
    std::fs::write(&quiet, b"x").unwrap(); // a write: reported
    std::fs::read(&quiet).unwrap(); // a read-only open: dropped in the kernel
    let fence = root.join("fence");
    std::fs::write(&fence, b"x").unwrap();
    sensor.wait_for("fence", |e| s(e, &["file", "path"]) == fence.to_str().unwrap());
    let events = sensor.matching(|e| s(e, &["file", "path"]) == quiet.to_str().unwrap());
    assert_eq!(events.len(), 1, "only the write: {events:?}");
    let flags = get(&events[0], &["file", "flags"]).as_array().unwrap();
    assert!(flags.contains(&"O_WRONLY".into()), "{flags:?}");
    // event types switched off in the kernel do not appear
    assert!(sensor.matching(|e| s(e, &["type"]) != "open").is_empty());
}

#[test]
fn lost_events_are_counted_per_type_when_the_ring_buffer_overflows() {
    let root = test_dir(&std::env::temp_dir(), "sensor-lost");
    // a 4 KiB ring, drained only every second: an open storm must overflow it
    let sensor = Sensor::start(
        &format!(
            "[kernel]\nevents = [\"open\", \"exec\"]\npoll_interval_ms = 1000\nwakeup_kib = 1024\n\
             [kernel.ring_buffer_kib]\nfile = 4\n[kernel.file_filter]\nwatch_prefixes = [\"{}/\"]\nwatch_only = true\n",
            root.display()
        ),
        &[],
    );
    let target = root.join("storm");
    std::fs::write(&target, b"x").unwrap();
    const OPENS: u64 = 20_000;
    for _ in 0..OPENS {
        drop(std::fs::File::open(&target).unwrap());
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (status, stderr) = sensor.stop_with(libc::SIGTERM);
    assert!(status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("sensor stats: ")).expect("stats line at exit");
    let stats: serde_json::Value = serde_json::from_str(line.trim_start_matches("sensor stats: ")).unwrap();
    let lost = u(&stats, &["kernel_lost_by_type", "open"]);
    let read = u(&stats, &["read_by_type", "open"]);
    assert!(lost > 0 && lost != u64::MAX, "a 4 KiB ring cannot hold {OPENS} opens: {stats}");
    assert!(read != u64::MAX && read + lost >= OPENS, "every open is either delivered or counted lost: {stats}");
    let delivered = sensor.matching(|e| s(e, &["file", "path"]) == target.to_str().unwrap()).len() as u64;
    // on a loaded machine the (debug) pipeline can fall behind: what the
    // queue refused is counted there, nothing vanishes unaccounted
    let queue_dropped = stats["queue_dropped_by_type"]["open"].as_u64().unwrap_or(0);
    assert_eq!(delivered + queue_dropped, read, "everything read was written out or counted as dropped: {stats}");
}

#[test]
fn sigterm_flushes_pending_events_and_detaches() {
    let root = test_dir(&std::env::temp_dir(), "sensor-term");
    let sensor = Sensor::start(
        &format!("[kernel.file_filter]\nwatch_prefixes = [\"{}/\"]\nwatch_only = true\n", root.display()),
        &[],
    );
    let ours = programs_of(sensor.pid);
    assert!(ours.len() >= 10, "the running sensor owns its programs: {ours:?}");
    let marker = root.join(format!("last-{}", unique()));
    std::fs::write(&marker, b"x").unwrap();
    // no waiting: the event is still in the kernel or the queue when SIGTERM lands
    let (status, stderr) = sensor.stop_with(libc::SIGTERM);
    assert!(status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("sensor stats: ")).expect("stats line at exit");
    let stats: serde_json::Value = serde_json::from_str(line.trim_start_matches("sensor stats: ")).unwrap();
    let got = sensor.matching(|e| s(e, &["file", "path"]) == marker.to_str().unwrap());
    assert_eq!(got.len(), 1, "the last event was flushed before exit");
    // the exit stats are taken after the audit trail's last commit
    let (accepted, written) = (u(&stats, &["audit", "accepted"]), u(&stats, &["audit", "written"]));
    assert!(accepted > 0 && accepted != u64::MAX && written == accepted, "{stats}");
    // every program it loaded is gone once it has exited
    for id in ours {
        let st = Command::new("bpftool").args(["prog", "show", "id", &id.to_string()]).output().unwrap();
        assert!(!st.status.success(), "program {id} still loaded after exit");
    }
}

/// Ids of the BPF programs a process holds open (from its fds' fdinfo).
fn programs_of(pid: u32) -> Vec<u64> {
    let mut ids = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(fd.path()) else { continue };
        if let Some(id) = info.lines().find_map(|l| l.strip_prefix("prog_id:")) {
            ids.push(id.trim().parse().unwrap());
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// One HTTP/1.1 exchange over a real socket: (status line, body).
fn http(addr: &str, request: &[u8]) -> (String, String) {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    sock.write_all(request).unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn prometheus_endpoint_serves_health_counters_and_refuses_garbage() {
    let sensor = Sensor::start("[metrics]\naddr = \"127.0.0.1:0\"\n[pipeline]\nstats_interval_secs = 0\n", &[]);
    let log = sensor.stderr();
    let addr = log
        .split("metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no metrics address logged:\n{log}"))
        .to_string();
    let marker = format!("metrics-{}", unique());
    Command::new("/bin/echo").arg(&marker).stdout(Stdio::null()).status().unwrap();
    sensor.wait_for("marker exec", |e| {
        s(e, &["type"]) == "exec" && get(e, &["process", "args"]).get(1).and_then(|a| a.as_str()) == Some(&marker)
    });
    // snapshots are published once a second
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = http(&addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        let execs = body
            .lines()
            .find_map(|l| l.strip_prefix("sensor_events_read_by_type_total{type=\"exec\"} "))
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0);
        if execs >= 1.0 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "no exec counted in /metrics:\n{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("# TYPE sensor_kernel_lost_total counter\n"), "{body}");
    assert!(body.contains("sensor_pipeline_queue_depth "), "{body}");
    assert!(body.contains("sensor_policy_"), "policy counters: {body}");
    assert_eq!(http(&addr, b"GET /nope HTTP/1.1\r\n\r\n").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http(&addr, b"\x00\xff garbage\r\n\r\n").0, "HTTP/1.1 400 Bad Request");
    assert_eq!(http(&addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 405 Method Not Allowed");
    // an oversized request is cut off, and the endpoint still answers after it
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    let _ = std::panic::catch_unwind(|| http(&addr, &huge));
    assert_eq!(http(&addr, b"GET /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 200 OK");
}

#[test]
fn a_taken_metrics_port_stops_the_start_with_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = test_dir(&std::env::temp_dir(), "sensor-metrics-port");
    let (code, err) = run_sensor(&[
        "run",
        "--metrics-addr",
        &addr,
        "--no-audit",
        "--events-out",
        "none",
        "--audit-db",
        dir.join("a.db").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("cannot listen for metrics on {addr}")), "{err}");
    let (code, err) = run_sensor(&["run", "--metrics-addr", "localhost", "--no-audit"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("metrics.addr") && err.contains("HOST:PORT"), "{err}");
}
