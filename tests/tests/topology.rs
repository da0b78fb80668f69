//! The service topology from real connections: a server in a network
//! namespace the test creates, a client in the host namespace, exact
//! connection and failure counts on the edge, read from /metrics.

use sensor_e2e::netns::{Killed, Netns, ip};
use sensor_e2e::{Sensor, s, u, unique};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn metrics(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    out
}

fn metrics_addr(sensor: &Sensor) -> String {
    let log = sensor.stderr();
    log.split("metrics at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("metrics address logged")
        .to_string()
}

fn wait_until_served(url: &str) {
    let start = Instant::now();
    while !Command::new("curl").args(["-sf", "-o", "/dev/null", "--max-time", "2", url]).status().unwrap().success() {
        assert!(start.elapsed() < Duration::from_secs(20), "{url} did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn series(text: &str, name: &str, client: &str, server: &str) -> Option<f64> {
    let prefix = format!("{name}{{client=\"{client}\",server=\"{server}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok())
}

#[test]
fn connections_into_a_namespace_form_one_edge_with_exact_counts() {
    let admin_dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-admin");
    let admin_socket = admin_dir.join("admin.sock").to_str().unwrap().to_string();
    let sensor = Sensor::start(
        "[metrics]\naddr = \"127.0.0.1:0\"\n[topology]\njoin_window_ms = 500\n[pipeline]\nstats_interval_secs = 0\n",
        &["--no-policy", "--admin-socket", &admin_socket],
    );
    let log = sensor.stderr();
    let metrics_addr = log.split("metrics at http://").nth(1).and_then(|r| r.split('/').next()).unwrap().to_string();
    let subnet = (unique() % 200) as u8 + 20;
    let ns = Netns::new("topo", 231, subnet);
    let server_ip = format!("10.231.{subnet}.2");

    // an HTTP server inside the namespace
    let server = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-m", "http.server", "--bind", &server_ip, "8080"])
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{server_ip}:8080/");
    let start = Instant::now();
    while !Command::new("curl").args(["-sf", "-o", "/dev/null", "--max-time", "2", &url]).status().unwrap().success() {
        assert!(start.elapsed() < Duration::from_secs(20), "server in {} did not come up", ns.name);
        std::thread::sleep(Duration::from_millis(100));
    }
    // the listen event names the server's executable
    let listen = sensor.wait_for("the server's listen", |e| {
        s(e, &["type"]) == "listen" && s(e, &["net", "saddr"]) == server_ip && u(e, &["net", "sport"]) == 8080
    });
    let exe = s(&listen, &["process", "exe"]).rsplit('/').next().unwrap().to_string();
    // outside the host's namespace the namespace is part of the node's name
    let server_node = format!("{exe}:8080@{}", ns.name);

    // a fresh client binary so no other traffic on this host shares its node name
    let dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-topo");
    let client = dir.join(format!("topo-client-{}", unique() % 100_000));
    std::fs::copy("/usr/bin/curl", &client).unwrap();
    let client_node = client.file_name().unwrap().to_str().unwrap().to_string();
    for _ in 0..5 {
        let ok = Command::new(&client).args(["-sf", "-o", "/dev/null", &url]).status().unwrap();
        assert!(ok.success());
    }
    // one refused connect: nothing listens on 8081
    let refused = Command::new(&client).args(["-s", "-o", "/dev/null", &format!("http://{server_ip}:8081/")]).status();
    assert!(!refused.unwrap().success());

    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = metrics(&metrics_addr);
        let done = series(&text, "sensor_topology_connections_total", &client_node, &server_node) == Some(5.0)
            && series(&text, "sensor_topology_connections_closed_total", &client_node, &server_node) == Some(5.0)
            && series(&text, "sensor_topology_connections_failed_total", &client_node, &format!("{server_ip}:8081"))
                == Some(1.0);
        if done {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "edge {client_node} -> {server_node} not as expected:\n{}",
            text.lines().filter(|l| l.contains(&client_node)).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(series(&text, "sensor_topology_connections_failed_total", &client_node, &server_node), Some(0.0));
    // requests went one way, pages the other
    let sent = series(&text, "sensor_topology_bytes_sent_total", &client_node, &server_node).unwrap();
    let received = series(&text, "sensor_topology_bytes_received_total", &client_node, &server_node).unwrap();
    assert!(sent > 5.0 * 50.0 && received > sent, "sent {sent}, received {received}");
    let count_line =
        format!("sensor_topology_connect_seconds_count{{client=\"{client_node}\",server=\"{server_node}\"}} 5");
    assert!(text.contains(&count_line), "{count_line} missing");

    // the same edge from `sensor topology`, over the admin socket (root-only)
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&admin_socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "admin socket mode {mode:o}");
    let topo = |format: &str| {
        let out = Command::new(sensor_e2e::sensor_bin())
            .args(["topology", "--socket", &admin_socket, "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&topo("json")).unwrap();
    let edge = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["client"] == client_node.as_str() && e["server"] == server_node.as_str())
        .unwrap_or_else(|| panic!("no edge in {json:#}"));
    assert_eq!(edge["connections"], 5);
    let node = json["nodes"].as_array().unwrap().iter().find(|n| n["name"] == server_node.as_str()).unwrap();
    assert_eq!(node["listening"], serde_json::json!([format!("{server_ip}:8080")]));
    assert!(topo("dot").contains(&format!("\"{client_node}\" -> \"{server_node}\" [label=\"5 conns, 0 failed\"]")));
    let table = topo("table");
    assert!(
        table.lines().any(|l| l.split_whitespace().take(3).eq([client_node.as_str(), server_node.as_str(), "5"])),
        "{table}"
    );
    let missing = Command::new(sensor_e2e::sensor_bin())
        .args(["topology", "--socket", "/nonexistent/admin.sock"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is `sensor run` running?"));

    // at shutdown the graph is written to the audit trail; `--db` reads it back
    let (status, _) = sensor.stop_with(libc::SIGTERM);
    assert!(status.success());
    let db = sensor.audit_db();
    let from_db = |args: &[&str]| {
        Command::new(sensor_e2e::sensor_bin()).arg("topology").arg("--db").arg(&db).args(args).output().unwrap()
    };
    let out = from_db(&["--since", "1h", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let edge = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["client"] == client_node.as_str() && e["server"] == server_node.as_str())
        .unwrap_or_else(|| panic!("no edge in the persisted snapshot {json:#}"));
    assert_eq!(edge["connections"], 5);
    let future = from_db(&["--since", "2099-01-01T00:00:00Z"]);
    assert_eq!(future.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&future.stderr).contains("no topology snapshot since"));
    drop(server);
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reverse_proxy_shows_as_two_edges() {
    let sensor = Sensor::start(
        "[metrics]\naddr = \"127.0.0.1:0\"\n[topology]\njoin_window_ms = 500\n[pipeline]\nstats_interval_secs = 0\n",
        &["--no-policy"],
    );
    let addr = metrics_addr(&sensor);
    let subnet = (unique() % 200) as u8 + 20;
    let ns = Netns::new("topo", 232, subnet);
    let (host_ip, proxy_ip) = (format!("10.232.{subnet}.1"), format!("10.232.{subnet}.2"));
    let dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-proxy");

    // the backend on the host end of the veth, nginx in the namespace in front of it
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "backend page\n").unwrap();
    let backend = Killed(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", &host_ip, "9000"])
            .current_dir(&site)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until_served(&format!("http://{host_ip}:9000/"));
    let d = dir.display();
    let conf = format!(
        "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;\n\
           uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;\n\
           server {{ listen {proxy_ip}:8080; location / {{ proxy_pass http://{host_ip}:9000; }} }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let proxy = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-p", dir.to_str().unwrap(), "-c"])
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://{proxy_ip}:8080/index.html");
    wait_until_served(&url);
    let listen = sensor.wait_for("the backend's listen", |e| {
        s(e, &["type"]) == "listen" && s(e, &["net", "saddr"]) == host_ip && u(e, &["net", "sport"]) == 9000
    });
    let backend_node = format!("{}:9000", s(&listen, &["process", "exe"]).rsplit('/').next().unwrap());

    let client = dir.join(format!("proxy-client-{}", unique() % 100_000));
    std::fs::copy("/usr/bin/curl", &client).unwrap();
    let client_node = client.file_name().unwrap().to_str().unwrap().to_string();
    for _ in 0..4 {
        let out = Command::new(&client).args(["-sf", &url]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "backend page\n");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = metrics(&addr);
        let proxy_node = format!("nginx:8080@{}", ns.name);
        let front = series(&text, "sensor_topology_connections_total", &client_node, &proxy_node);
        // the warm-up request also went through the proxy: 5 upstream connections
        let back = series(&text, "sensor_topology_connections_total", &proxy_node, &backend_node);
        if front == Some(4.0) && back == Some(5.0) {
            // no blurred edge from the client straight to the backend
            assert_eq!(series(&text, "sensor_topology_connections_total", &client_node, &backend_node), None);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "want {client_node} -> {proxy_node} = 4 and {proxy_node} -> {backend_node} = 5, got {front:?} and {back:?}:\n{}",
            text.lines().filter(|l| l.starts_with("sensor_topology_connections_total")).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(proxy);
    drop(backend);
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// An HTTP/1.1 server whose `/slow` handler sleeps 50 ms and whose `/fail`
/// answers 500. It logs its own time per request (from the handler's start to
/// the response's headers sent, i.e. request start to response start as the
/// sensor measures it): the ground truth the sensor's latency is held to.
const HTTP_SERVER: &str = r#"
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log = open(sys.argv[3], "a", buffering=1)
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        t0 = time.monotonic_ns()
        if self.path.startswith("/slow"):
            time.sleep(0.05)
        code = 500 if self.path.startswith("/fail") else 200
        body = b"ok\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # the response has started (the headers are sent): what the sensor measures
        t1 = time.monotonic_ns()
        self.wfile.write(body)
        self.wfile.flush()
        log.write("%s %d\n" % (self.path, t1 - t0))
    def log_message(self, *a):
        pass
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"#;

#[test]
fn http_requests_failures_and_latency_on_an_edge() {
    let sensor = Sensor::start(
        "[metrics]\naddr = \"127.0.0.1:0\"\n[l7]\nemit = \"all\"\n[topology]\njoin_window_ms = 500\n[pipeline]\nstats_interval_secs = 0\n",
        &["--no-policy"],
    );
    let addr = metrics_addr(&sensor);
    let subnet = (unique() % 200) as u8 + 20;
    let ns = Netns::new("topo", 233, subnet);
    let server_ip = format!("10.233.{subnet}.2");
    let dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-l7");
    let script = dir.join("server.py");
    std::fs::write(&script, HTTP_SERVER).unwrap();
    // a copy of the interpreter under a unique name: the server node is unique
    let python = dir.join(format!("l7-server-{}", unique() % 100_000));
    let real_python = std::fs::canonicalize(
        String::from_utf8(
            Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap().stdout,
        )
        .unwrap()
        .trim(),
    )
    .unwrap();
    std::fs::copy(&real_python, &python).unwrap();
    let server = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(&python)
            .arg(&script)
            .args([&server_ip, "8080"])
            .arg(dir.join("server.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{server_ip}:8080");
    wait_until_served(&format!("{base}/ready"));
    let server_exe = python.file_name().unwrap().to_str().unwrap().to_string();
    let server_node = format!("{server_exe}:8080@{}", ns.name);
    let client = dir.join(format!("l7-client-{}", unique() % 100_000));
    std::fs::copy("/usr/bin/curl", &client).unwrap();
    let client_node = client.file_name().unwrap().to_str().unwrap().to_string();

    // one keep-alive connection: 3 slow, 2 failing, 1 plain request; then a
    // second connection with 1 more
    let urls: Vec<String> = ["/slow/1", "/fail/a", "/slow/2", "/items/42", "/fail/b", "/slow/3"]
        .iter()
        .map(|p| format!("{base}{p}"))
        .collect();
    let out = Command::new(&client).arg("-s").args(&urls).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("ok").count(), 6);
    let out = Command::new(&client).args(["-s", &format!("{base}/items/43")]).output().unwrap();
    assert!(out.status.success());

    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = metrics(&addr);
        let total = series(&text, "traces_service_graph_request_total", &client_node, &server_node);
        let failed = series(&text, "traces_service_graph_request_failed_total", &client_node, &server_node);
        if total == Some(7.0) && failed == Some(2.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "want 7 requests, 2 failed on {client_node} -> {server_node}; got {total:?}, {failed:?}:\n{}",
            text.lines().filter(|l| l.contains("request")).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(series(&text, "sensor_topology_connections_total", &client_node, &server_node), Some(2.0));
    let count = format!(
        "traces_service_graph_request_server_seconds_count{{client=\"{client_node}\",server=\"{server_node}\"}} 7"
    );
    assert!(text.contains(&count), "{count}");
    // 3 of 7 took >= 50 ms: the 0.05 bucket holds the other 4, the 0.1 bucket all 7
    let bucket = |le: &str| {
        let prefix = format!(
            "traces_service_graph_request_server_seconds_bucket{{client=\"{client_node}\",server=\"{server_node}\",le=\"{le}\"}} "
        );
        text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!((bucket("0.05"), bucket("0.1")), (Some(4.0), Some(7.0)), "{text}");

    // the events: each request from both ends, the server's latency within 10% or 2 ms of the sleep
    let events = sensor.matching(|e| s(e, &["type"]) == "http");
    let server_side: Vec<_> = events
        .iter()
        .filter(|e| s(e, &["http", "role"]) == "server" && s(e, &["http", "path"]) != "/ready")
        .filter(|e| s(e, &["process", "exe"]).ends_with(&server_exe))
        .collect();
    assert_eq!(server_side.len(), 7, "{events:#?}");
    let own: std::collections::HashMap<String, f64> = std::fs::read_to_string(dir.join("server.log"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(p, ns)| (p.to_string(), ns.parse::<f64>().unwrap() / 1e6)))
        .collect();
    for e in &server_side {
        let path = s(e, &["http", "path"]);
        let latency = u(e, &["http", "latency_ns"]) as f64 / 1e6;
        let truth = own[path];
        // the sensor's span (request read .. response sent) and the handler's
        // own (handler start .. write returned) differ by parsing and wake-ups
        let slack = (truth * 0.1).max(2.0);
        assert!(
            (latency - truth).abs() <= slack,
            "{path}: the sensor saw {latency:.2} ms, the server took {truth:.2} ms"
        );
        if path.starts_with("/slow") {
            assert!(latency >= 50.0, "{path}: {latency} ms for a 50 ms handler");
        }
        let status = u(e, &["http", "status"]);
        assert_eq!(status, if path.starts_with("/fail") { 500 } else { 200 }, "{e}");
        assert_eq!(e["failed"], status == 500);
    }
    let templates: std::collections::BTreeSet<&str> =
        server_side.iter().map(|e| s(e, &["http", "path_template"])).collect();
    assert!(templates.contains("/items/{id}") && templates.contains("/slow/{id}"), "{templates:?}");
    let client_side = events
        .iter()
        .filter(|e| s(e, &["http", "role"]) == "client" && s(e, &["process", "exe"]) == client.to_str().unwrap())
        .count();
    assert_eq!(client_side, 7);
    drop(server);
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// Waits until `cmd` succeeds (a server coming up).
fn wait_for_command(what: &str, cmd: &mut dyn FnMut() -> bool) {
    let start = Instant::now();
    while !cmd() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the edge's request and failure counts on /metrics.
fn wait_for_requests(addr: &str, client: &str, server: &str, protocol: &str, want: (f64, f64)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(addr);
        let labels = format!("{{client=\"{client}\",server=\"{server}\",protocol=\"{protocol}\"}} ");
        let get = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(&format!("{name}{labels}"))).and_then(|v| v.parse::<f64>().ok())
        };
        let got = (get("sensor_topology_requests_total"), get("sensor_topology_requests_failed_total"));
        if got == (Some(want.0), Some(want.1)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "want {want:?} {protocol} requests/failures on {client} -> {server}, got {got:?}:\n{}",
            text.lines().filter(|l| l.starts_with("sensor_topology_requests")).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn redis_and_postgres_commands_and_errors_are_counted() {
    let sensor = Sensor::start(
        "[metrics]\naddr = \"127.0.0.1:0\"\n[l7]\nemit = \"all\"\n[topology]\njoin_window_ms = 500\n[pipeline]\nstats_interval_secs = 0\n",
        &["--no-policy"],
    );
    let addr = metrics_addr(&sensor);
    let subnet = (unique() % 200) as u8 + 20;
    let ns = Netns::new("topo", 234, subnet);
    let ip = format!("10.234.{subnet}.2");
    let dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-db");

    // Redis in the namespace; redis-cli from the host: 3 commands, 1 error reply
    let redis = Killed(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "redis-server",
                "--bind",
                &ip,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cli = |args: &[&str]| Command::new("redis-cli").args(["-h", &ip, "-p", "6379"]).args(args).output().unwrap();
    wait_for_command("redis", &mut || cli(&["PING"]).stdout.starts_with(b"PONG"));
    // redis-server is a link to another binary: name the node from its listen event
    let listen = sensor.wait_for("redis listen", |e| {
        s(e, &["type"]) == "listen" && s(e, &["net", "saddr"]) == ip && u(e, &["net", "sport"]) == 6379
    });
    let redis_node = format!("{}:6379@{}", s(&listen, &["process", "exe"]).rsplit('/').next().unwrap(), ns.name);
    assert_eq!(cli(&["SET", "k", "v"]).stdout, b"OK\n");
    assert_eq!(cli(&["GET", "k"]).stdout, b"v\n");
    // INCR of a non-number: an error reply
    assert!(String::from_utf8_lossy(&cli(&["INCR", "k"]).stdout).contains("ERR"));
    // the PING probes above went through too: they are counted from the events
    let cmds: Vec<String> = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let evs = sensor.matching(|e| {
                s(e, &["type"]) == "redis" && s(e, &["redis", "role"]) == "server" && s(e, &["net", "saddr"]) == ip
            });
            let cmds: Vec<String> = evs.iter().map(|e| s(e, &["redis", "command"]).to_string()).collect();
            if cmds.iter().any(|c| c == "INCR") {
                break cmds;
            }
            assert!(Instant::now() < deadline, "redis server-side events: {cmds:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let ping_count = cmds.iter().filter(|c| *c == "PING").count() as f64;
    assert_eq!(cmds.iter().filter(|c| *c != "PING").cloned().collect::<Vec<_>>(), ["SET", "GET", "INCR"]);
    let incr = sensor
        .matching(|e| {
            s(e, &["type"]) == "redis" && s(e, &["redis", "command"]) == "INCR" && s(e, &["redis", "role"]) == "server"
        })
        .remove(0);
    assert_eq!(incr["failed"], true);
    assert!(s(&incr, &["redis", "error"]).contains("ERR"), "{incr}");
    wait_for_requests(&addr, "redis-cli", &redis_node, "redis", (3.0 + ping_count, 1.0));
    drop(redis);

    // PostgreSQL in the namespace (as the postgres user; initdb refuses root)
    let pgdata = dir.join("pg");
    std::fs::create_dir_all(&pgdata).unwrap();
    let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
    assert!(chown.success());
    let bin = std::fs::read_dir("/usr/lib/postgresql").unwrap().next().unwrap().unwrap().path().join("bin");
    let initdb = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&pgdata)
        .output()
        .unwrap();
    assert!(initdb.status.success(), "{}", String::from_utf8_lossy(&initdb.stderr));
    // the client comes from the host end of the veth, not from loopback
    let hba = pgdata.join("pg_hba.conf");
    let mut rules = std::fs::read_to_string(&hba).unwrap();
    rules.push_str(&format!("host all all 10.234.{subnet}.0/24 trust\n"));
    std::fs::write(&hba, rules).unwrap();
    let pg = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "runuser", "-u", "postgres", "--"])
            .arg(bin.join("postgres"))
            .arg("-D")
            .arg(&pgdata)
            .args(["-c", &format!("listen_addresses={ip}"), "-c", "unix_socket_directories=", "-p", "5432"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let psql = |sql: &str| {
        Command::new("psql")
            .args(["-h", &ip, "-U", "postgres", "-d", "postgres", "-X", "-q", "-t", "-c", sql])
            .output()
            .unwrap()
    };
    wait_for_command("postgres", &mut || psql("select 1").status.success());
    assert!(psql("create table t (x int)").status.success());
    assert!(psql("insert into t values (1), (2)").status.success());
    assert_eq!(String::from_utf8_lossy(&psql("select count(*) from t").stdout).trim(), "2");
    assert!(!psql("select * from missing_table").status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    // the readiness probes ("select 1") are counted apart
    let (ours, probes) = loop {
        let evs = sensor.matching(|e| s(e, &["type"]) == "pg" && s(e, &["pg", "role"]) == "server");
        let (probes, ours): (Vec<_>, Vec<_>) = evs.into_iter().partition(|e| s(e, &["pg", "query"]) == "select 1");
        if ours.len() >= 4 {
            break (ours, probes.len() as f64);
        }
        assert!(Instant::now() < deadline, "pg events: {ours:#?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let types: Vec<&str> = ours.iter().map(|e| s(e, &["pg", "statement_type"])).collect();
    assert_eq!(types, ["CREATE", "INSERT", "SELECT", "SELECT"], "{ours:#?}");
    let failed: Vec<&serde_json::Value> = ours.iter().filter(|e| e["failed"] == true).collect();
    assert_eq!(failed.len(), 1);
    assert!(s(failed[0], &["pg", "error"]).contains("missing_table"), "{}", failed[0]);
    wait_for_requests(&addr, "psql", &format!("postgres:5432@{}", ns.name), "pg", (4.0 + probes, 1.0));
    drop(pg);
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// A DNS server for `*.sensor.test`: `api` -> the address in argv[2],
/// `broken` -> SERVFAIL, anything else -> NXDOMAIN.
const DNS_SERVER: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
answer_ip = socket.inet_aton(sys.argv[2])
while True:
    q, peer = s.recvfrom(512)
    qid, flags = struct.unpack("!HH", q[:4])
    end = q.index(b"\0", 12) + 5
    labels, i = [], 12
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    name = ".".join(labels)
    rcode, answers = 3, b""
    if name == "api.sensor.test":
        rcode = 0
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + answer_ip
    elif name == "broken.sensor.test":
        rcode = 2
    hdr = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
    s.sendto(hdr + q[12:end] + answers, peer)
"#;

/// Resolves three names against the server in argv[1], then connects to
/// the resolved address on a closed port.
const DNS_CLIENT: &str = r#"
import random, socket, struct, sys
def query(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    s.sendto(q, (sys.argv[1], 53))
    r, _ = s.recvfrom(512)
    return r
r = query("api.sensor.test")
ip = socket.inet_ntoa(r[-4:])
query("missing.sensor.test")
query("broken.sensor.test")
try:
    socket.create_connection((ip, 9999), timeout=5)
except OSError:
    pass
print(ip)
"#;

#[test]
fn dns_latency_errors_and_names_on_edges() {
    let sensor = Sensor::start(
        "[metrics]\naddr = \"127.0.0.1:0\"\n[topology]\njoin_window_ms = 500\n[pipeline]\nstats_interval_secs = 0\n",
        &["--no-policy"],
    );
    let addr = metrics_addr(&sensor);
    let subnet = (unique() % 200) as u8 + 20;
    let ns = Netns::new("topo", 236, subnet);
    let (api_ip, dns_ip) = (format!("10.236.{subnet}.2"), format!("10.236.{subnet}.4"));
    ip(&["-n", &ns.name, "addr", "add", &format!("{dns_ip}/24"), "dev", &ns.peer_if]);
    let dir = sensor_e2e::test_dir(&std::env::temp_dir(), "sensor-dns");
    std::fs::write(dir.join("server.py"), DNS_SERVER).unwrap();
    std::fs::write(dir.join("client.py"), DNS_CLIENT).unwrap();
    let _server = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3"])
            .arg(dir.join("server.py"))
            .args([&dns_ip, &api_ip])
            .spawn()
            .unwrap(),
    );
    let python = std::fs::canonicalize(
        String::from_utf8(
            Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap().stdout,
        )
        .unwrap()
        .trim(),
    )
    .unwrap();
    let client = dir.join(format!("dns-client-{}", unique() % 100_000));
    std::fs::copy(&python, &client).unwrap();
    let client_node = client.file_name().unwrap().to_str().unwrap().to_string();
    // the server needs a moment to bind: retry the whole client until it resolves
    let start = Instant::now();
    let out = loop {
        let out = Command::new(&client).arg(dir.join("client.py")).arg(&dns_ip).output().unwrap();
        if out.status.success() {
            break out;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), api_ip);

    // the response events carry the round trip
    let response = sensor.wait_for("the api.sensor.test response", |e| {
        s(e, &["type"]) == "dns"
            && s(e, &["dns", "qname"]) == "api.sensor.test"
            && e["dns"]["response"] == true
            && s(e, &["process", "exe"]) == client.to_str().unwrap()
    });
    let latency = u(&response, &["dns", "latency_ns"]);
    assert!(latency > 0 && latency < 5_000_000_000, "{response}");
    assert_eq!(response["dns"]["answers"][0]["data"], api_ip.as_str(), "{response}");

    // the resolver edge: 3 queries, SERVFAIL failed (NXDOMAIN is an answer);
    // the refused connect to the resolved address is named by the answer
    let dns_node = format!("{dns_ip}:53");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(&addr);
        let labels = format!("{{client=\"{client_node}\",server=\"{dns_node}\",protocol=\"dns\"}} ");
        let get =
            |name: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{name}{labels}"))).map(str::to_string);
        let named = series(&text, "sensor_topology_connections_failed_total", &client_node, "api.sensor.test:9999");
        let got = (get("sensor_topology_requests_total"), get("sensor_topology_requests_failed_total"), named);
        if got == (Some("3".into()), Some("1".into()), Some(1.0)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "want 3 dns requests, 1 failed, and a failed connect to api.sensor.test:9999; got {got:?}\n{}",
            text.lines().filter(|l| l.contains(&client_node)).collect::<Vec<_>>().join("\n")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(ns);
    let _ = std::fs::remove_dir_all(dir);
}
