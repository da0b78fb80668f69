//! The real probes, as root, on this kernel: perform a known action and
//! assert the event the sensor reports, field by field.

use sensor_e2e::{get, s, shared, shared_root, test_dir, u, unique};
use serde_json::Value;
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

fn me() -> u64 {
    std::process::id() as u64
}

fn is(e: &Value, ty: &str) -> bool {
    s(e, &["type"]) == ty
}

#[test]
fn exec_fork_exit_with_exact_fields() {
    let sensor = shared();
    let marker = format!("marker-{}", unique());
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let child = Command::new("/bin/echo").args([marker.as_str(), "two words", ""]).output().unwrap();
    assert!(child.status.success());
    // the child's pid is in the exec event whose args carry the marker
    let exec = sensor.wait_for("exec of /bin/echo", |e| {
        is(e, "exec") && get(e, &["process", "args"]).get(1).and_then(Value::as_str) == Some(marker.as_str())
    });
    assert_eq!(s(&exec, &["process", "exe"]), "/usr/bin/echo", "canonical path (Debian's /bin -> usr/bin)");
    assert_eq!(get(&exec, &["process", "args"]), &serde_json::json!(["/bin/echo", marker, "two words", ""]));
    assert_eq!(s(&exec, &["exec", "filename"]), "/bin/echo");
    assert_eq!(u(&exec, &["exec", "argc"]), 4);
    assert_eq!(u(&exec, &["process", "ppid"]), me());
    assert_eq!(u(&exec, &["process", "uid"]), 0);
    assert_eq!(u(&exec, &["process", "euid"]), 0);
    assert_eq!(s(&exec, &["process", "cwd"]), cwd.to_str().unwrap());
    assert_eq!(s(&exec, &["process", "comm"]), "echo");
    let lineage = get(&exec, &["process", "lineage"]).as_array().unwrap();
    assert_eq!(lineage[0].as_str().unwrap(), std::env::current_exe().unwrap().to_str().unwrap());
    assert!(s(&exec, &["ts"]).ends_with('Z') && s(&exec, &["ts"]).len() == 30, "RFC 3339 ns: {}", exec["ts"]);
    assert!(!s(&exec, &["host"]).is_empty());

    let pid = u(&exec, &["process", "pid"]);
    let fork = sensor.wait_for("fork of the echo child", |e| is(e, "fork") && u(e, &["fork", "child_pid"]) == pid);
    assert_eq!(u(&fork, &["process", "pid"]), me());
    let exit = sensor.wait_for("exit of echo", |e| is(e, "exit") && u(e, &["process", "pid"]) == pid);
    assert_eq!(u(&exit, &["exit", "code"]), 0);
    assert!(get(&exit, &["exit", "signal"]).is_null());
    assert_eq!(s(&exit, &["process", "exe"]), "/usr/bin/echo");
}

#[test]
fn exit_code_and_killing_signal() {
    let sensor = shared();
    let st = Command::new("/bin/sh").args(["-c", "exit 7"]).status().unwrap();
    assert_eq!(st.code(), Some(7));
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let sleeper_pid = sleeper.id() as u64;
    sleeper.kill().unwrap();
    assert_eq!(sleeper.wait().unwrap().signal(), Some(9));

    let exit7 = sensor
        .wait_for("exit 7", |e| is(e, "exit") && u(e, &["process", "ppid"]) == me() && u(e, &["exit", "code"]) == 7);
    assert_eq!(s(&exit7, &["process", "exe"]), "/usr/bin/dash");
    let killed = sensor.wait_for("sleep killed", |e| is(e, "exit") && u(e, &["process", "pid"]) == sleeper_pid);
    assert_eq!(u(&killed, &["exit", "signal"]), 9);
}

#[test]
fn file_operations_on_absolute_paths() {
    let sensor = shared();
    let dir = test_dir(&shared_root(), "abs");
    let a = dir.join("a.txt");
    let b = dir.join("b.txt");
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u64;
    std::fs::File::create(&a).unwrap().write_all(b"hello").unwrap();
    std::fs::rename(&a, &b).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o640)).unwrap();
    let hard = dir.join("hard.txt");
    std::fs::hard_link(&b, &hard).unwrap();
    let soft = dir.join("soft.txt");
    std::os::unix::fs::symlink("b.txt", &soft).unwrap();
    std::fs::read(&soft).unwrap();
    std::fs::remove_file(&hard).unwrap();
    let (a, b, hard, soft) = (a.to_str().unwrap(), b.to_str().unwrap(), hard.to_str().unwrap(), soft.to_str().unwrap());

    let mine = |e: &Value, ty: &str| is(e, ty) && u(e, &["process", "pid"]) == me();
    let create = sensor.wait_for("create a.txt", |e| mine(e, "open") && s(e, &["file", "path"]) == a);
    let flags: Vec<&str> =
        get(&create, &["file", "flags"]).as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for f in ["O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"] {
        assert!(flags.contains(&f), "{f} missing from {flags:?}");
    }
    assert_eq!(u(&create, &["file", "mode"]), 0o666);
    assert!(get(&create, &["file", "result"]).as_i64().unwrap() >= 0);
    assert_eq!(get(&create, &["file", "resolved"]), true);
    assert_eq!(u(&create, &["process", "tid"]), tid, "the test thread, not the process");

    let rename = sensor.wait_for("rename", |e| mine(e, "rename") && s(e, &["file", "path"]) == a);
    assert_eq!(s(&rename, &["file", "new_path"]), b);
    assert_eq!(get(&rename, &["file", "success"]), true);

    let chmod = sensor.wait_for("chmod", |e| mine(e, "chmod") && s(e, &["file", "path"]) == b);
    assert_eq!(u(&chmod, &["file", "mode"]), 0o640);

    let link = sensor.wait_for("link", |e| mine(e, "link") && s(e, &["file", "path"]) == b);
    assert_eq!(s(&link, &["file", "new_path"]), hard);

    let symlink = sensor.wait_for("symlink", |e| mine(e, "symlink") && s(e, &["file", "new_path"]) == soft);
    assert_eq!(s(&symlink, &["file", "target"]), "b.txt", "a symlink's target is text, kept as is");

    // reading through the symlink reports the file it resolves to, and the name used
    let read = sensor.wait_for("read via symlink", |e| mine(e, "open") && s(e, &["file", "raw_path"]) == soft);
    assert_eq!(s(&read, &["file", "path"]), b);
    assert_eq!(get(&read, &["file", "flags"]), &serde_json::json!(["O_RDONLY", "O_CLOEXEC"]));

    let unlink = sensor.wait_for("unlink", |e| mine(e, "unlink") && s(e, &["file", "path"]) == hard);
    assert_eq!(get(&unlink, &["file", "dir"]), false);
    assert_eq!(u(&unlink, &["file", "result"]), 0);
}

#[test]
fn relative_paths_are_resolved_against_the_cwd() {
    let sensor = shared();
    let dir = test_dir(&shared_root(), "rel");
    std::fs::create_dir(dir.join("sub")).unwrap();
    let script = "cd sub && : > rel.txt && mv rel.txt ../moved.txt && chmod 600 ../moved.txt \
                  && cat ../sub/../moved.txt && rm ../moved.txt";
    let st = Command::new("/bin/sh").arg("-c").arg(script).current_dir(&dir).status().unwrap();
    assert!(st.success());
    let d = dir.to_str().unwrap();
    let created = format!("{d}/sub/rel.txt");
    let moved = format!("{d}/moved.txt");

    let open = sensor.wait_for("shell creates rel.txt", |e| is(e, "open") && s(e, &["file", "path"]) == created);
    assert_eq!(s(&open, &["file", "raw_path"]), "rel.txt");
    assert_eq!(s(&open, &["process", "cwd"]), format!("{d}/sub").as_str(), "cwd after cd is the subdirectory");

    let mv = sensor.wait_for("mv", |e| is(e, "rename") && s(e, &["file", "path"]) == created);
    assert_eq!(s(&mv, &["file", "new_path"]), moved);
    assert_eq!(s(&mv, &["file", "raw_path"]), "rel.txt");
    assert_eq!(s(&mv, &["process", "exe"]), "/usr/bin/mv");

    let chmod = sensor.wait_for("chmod ../moved.txt", |e| is(e, "chmod") && s(e, &["file", "path"]) == moved);
    assert_eq!(s(&chmod, &["file", "raw_path"]), "../moved.txt");
    assert_eq!(u(&chmod, &["file", "mode"]), 0o600);

    let cat = sensor
        .wait_for("cat via ../sub/../", |e| is(e, "open") && s(e, &["file", "raw_path"]) == "../sub/../moved.txt");
    assert_eq!(s(&cat, &["file", "path"]), moved);
    assert_eq!(s(&cat, &["process", "exe"]), "/usr/bin/cat");

    let rm = sensor.wait_for("rm", |e| is(e, "unlink") && s(e, &["file", "path"]) == moved);
    assert_eq!(s(&rm, &["process", "exe"]), "/usr/bin/rm");
}

#[test]
fn dirfd_relative_paths_are_resolved_against_the_directory() {
    let sensor = shared();
    let dir = test_dir(&shared_root(), "dirfd");
    let cdir = CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: plain syscalls on strings we own; fds are closed below.
    let (created_fd, missing_rc, unlink_rc) = unsafe {
        let dfd = libc::open(cdir.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        assert!(dfd >= 0);
        let fd = libc::openat(dfd, c"viafd.txt".as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL, 0o600);
        assert!(fd >= 0);
        libc::close(fd);
        let missing = libc::openat(dfd, c"nope/../missing.txt".as_ptr(), libc::O_RDONLY);
        let unlink = libc::unlinkat(dfd, c"viafd.txt".as_ptr(), 0);
        libc::close(dfd);
        (fd, missing, unlink)
    };
    assert!(missing_rc < 0 && unlink_rc == 0);
    let d = dir.to_str().unwrap();
    let target = format!("{d}/viafd.txt");
    let mine = |e: &Value, ty: &str| is(e, ty) && u(e, &["process", "pid"]) == me();

    let open = sensor.wait_for("openat(dirfd)", |e| mine(e, "open") && s(e, &["file", "path"]) == target);
    assert_eq!(s(&open, &["file", "raw_path"]), "viafd.txt");
    assert_eq!(get(&open, &["file", "result"]).as_i64(), Some(created_fd as i64));
    assert!(get(&open, &["file", "flags"]).as_array().unwrap().contains(&"O_EXCL".into()));
    assert_eq!(u(&open, &["file", "mode"]), 0o600);

    let missing = format!("{d}/missing.txt");
    let failed = sensor.wait_for("failed openat", |e| mine(e, "open") && s(e, &["file", "path"]) == missing);
    assert_eq!(get(&failed, &["file", "success"]), false);
    assert_eq!(s(&failed, &["file", "error"]), "ENOENT");
    assert_eq!(get(&failed, &["file", "result"]).as_i64(), Some(-2));
    assert_eq!(s(&failed, &["file", "raw_path"]), "nope/../missing.txt");

    let unlink = sensor.wait_for("unlinkat(dirfd)", |e| mine(e, "unlink") && s(e, &["file", "path"]) == target);
    assert_eq!(s(&unlink, &["file", "raw_path"]), "viafd.txt");
}

fn tcp_round_trip(bind: &str) {
    let sensor = shared();
    let listener = TcpListener::bind(bind).unwrap();
    let server_addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(server_addr).unwrap();
    let client_addr = client.local_addr().unwrap();
    let (mut server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client_addr);
    client.write_all(&[7u8; 1000]).unwrap();
    let mut buf = vec![0u8; 1000];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&[9u8; 300]).unwrap();
    client.read_exact(&mut buf[..300]).unwrap();
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    drop(server);

    let ip = server_addr.ip().to_string();
    let family = if server_addr.is_ipv6() { "ipv6" } else { "ipv4" };
    let (sport, cport) = (server_addr.port() as u64, client_addr.port() as u64);
    let mine = |e: &Value, ty: &str| is(e, ty) && u(e, &["process", "pid"]) == me();

    let listen = sensor.wait_for("listen", |e| mine(e, "listen") && u(e, &["net", "sport"]) == sport);
    assert_eq!(s(&listen, &["net", "saddr"]), ip);
    assert_eq!(s(&listen, &["net", "family"]), family);

    let connect = sensor.wait_for("connect", |e| mine(e, "connect") && u(e, &["net", "sport"]) == cport);
    assert_eq!(s(&connect, &["net", "daddr"]), ip);
    assert_eq!(u(&connect, &["net", "dport"]), sport);
    assert_eq!(s(&connect, &["net", "saddr"]), ip);
    assert_eq!(s(&connect, &["net", "direction"]), "outbound");
    assert_eq!(s(&connect, &["net", "proto"]), "tcp");
    assert_eq!(get(&connect, &["net", "success"]), true);
    let latency = u(&connect, &["net", "latency_ns"]);
    assert!(latency > 0 && latency < 1_000_000_000, "loopback connect latency {latency} ns");

    let accept = sensor.wait_for("accept", |e| mine(e, "accept") && u(e, &["net", "dport"]) == cport);
    assert_eq!(u(&accept, &["net", "sport"]), sport);
    assert_eq!(s(&accept, &["net", "daddr"]), ip);
    assert_eq!(s(&accept, &["net", "direction"]), "inbound");

    let client_sock = u(&connect, &["net", "sock_id"]);
    let close_c = sensor.wait_for("client close", |e| mine(e, "close") && u(e, &["net", "sock_id"]) == client_sock);
    assert_eq!(u(&close_c, &["net", "bytes_sent"]), 1000);
    assert_eq!(u(&close_c, &["net", "bytes_received"]), 300);
    assert_eq!(s(&close_c, &["net", "direction"]), "outbound");
    assert!(u(&close_c, &["net", "duration_ns"]) > 0);

    let server_sock = u(&accept, &["net", "sock_id"]);
    let close_s = sensor.wait_for("server close", |e| mine(e, "close") && u(e, &["net", "sock_id"]) == server_sock);
    assert_eq!(u(&close_s, &["net", "bytes_sent"]), 300);
    assert_eq!(u(&close_s, &["net", "bytes_received"]), 1000);
    assert_eq!(s(&close_s, &["net", "direction"]), "inbound");
}

#[test]
fn tcp_connect_accept_close_ipv4() {
    tcp_round_trip("127.0.0.1:0");
}

#[test]
fn tcp_connect_accept_close_ipv6() {
    tcp_round_trip("[::1]:0");
}

#[test]
fn refused_connect_is_reported_as_failed() {
    let sensor = shared();
    // a port nobody listens on: bind, note it, close
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let ev = sensor.wait_for("refused connect", |e| {
        is(e, "connect") && u(e, &["process", "pid"]) == me() && u(e, &["net", "dport"]) == port as u64
    });
    assert_eq!(get(&ev, &["net", "success"]), false);
    assert_eq!(s(&ev, &["net", "error"]), "ECONNREFUSED");
}

#[test]
fn dns_query_and_response_over_udp() {
    let sensor = shared();
    let server_addr: SocketAddr = "127.5.5.53:53".parse().unwrap();
    let server = UdpSocket::bind(server_addr).expect("bind a DNS test server on 127.5.5.53:53");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let name = format!("q{}.e2e.test", unique() % 1_000_000);
    let query = dns_query(0x4242, &name);
    client.send_to(&query, server_addr).unwrap();
    let mut buf = [0u8; 512];
    let (n, from) = server.recv_from(&mut buf).unwrap();
    let mut resp = buf[..n].to_vec();
    resp[2] = 0x81;
    resp[3] = 0x80;
    resp[7] = 1;
    resp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
    server.send_to(&resp, from).unwrap();
    let (m, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(m, resp.len());
    let cport = client.local_addr().unwrap().port() as u64;

    let mine = |e: &Value| is(e, "dns") && u(e, &["process", "pid"]) == me() && s(e, &["dns", "qname"]) == name;
    let q = sensor.wait_for("query sent", |e| {
        mine(e) && s(e, &["net", "direction"]) == "send" && u(e, &["net", "sport"]) == cport
    });
    assert_eq!(s(&q, &["net", "daddr"]), "127.5.5.53");
    assert_eq!(u(&q, &["net", "dport"]), 53);
    assert_eq!(s(&q, &["net", "proto"]), "udp");
    assert_eq!(s(&q, &["dns", "qtype"]), "A");
    assert_eq!(get(&q, &["dns", "response"]), false);
    assert_eq!(u(&q, &["dns", "id"]), 0x4242);

    let r = sensor.wait_for("response received", |e| {
        mine(e) && s(e, &["net", "direction"]) == "receive" && u(e, &["net", "sport"]) == cport
    });
    assert_eq!(get(&r, &["dns", "response"]), true);
    assert_eq!(s(&r, &["dns", "rcode"]), "NOERROR");
    assert_eq!(get(&r, &["dns", "answers"])[0]["data"], "10.1.2.3");
    assert_eq!(u(&r, &["net", "dport"]), 53);

    // the server side sees the same exchange from port 53
    sensor.wait_for("server receive", |e| {
        mine(e) && s(e, &["net", "direction"]) == "receive" && u(e, &["net", "sport"]) == 53
    });
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 1, 0, 1]);
    b
}

#[test]
fn the_sensors_own_activity_is_not_reported() {
    let sensor = shared();
    // the sensor writes its events file continuously; none of that may appear
    let fence = test_dir(&shared_root(), "fence").join("f");
    std::fs::write(&fence, b"x").unwrap();
    sensor.wait_for("fence", |e| s(e, &["file", "path"]) == fence.to_str().unwrap());
    let own = sensor.matching(|e| u(e, &["process", "pid"]) == sensor.pid as u64);
    assert!(own.is_empty(), "sensor reported itself: {:?}", own.first());
}

#[test]
fn file_events_outside_the_watched_prefix_are_filtered_in_the_kernel() {
    let sensor = shared();
    let outside = std::env::temp_dir().join(format!("outside-{}", unique()));
    std::fs::write(&outside, b"x").unwrap();
    std::fs::remove_file(&outside).unwrap();
    let fence = test_dir(&shared_root(), "fence2").join("f");
    std::fs::write(&fence, b"x").unwrap();
    sensor.wait_for("fence", |e| s(e, &["file", "path"]) == fence.to_str().unwrap());
    let leaked = sensor.matching(|e| s(e, &["file", "path"]) == outside.to_str().unwrap());
    assert!(leaked.is_empty(), "watch_only let through {leaked:?}");
}

#[test]
fn openat2_is_reported_with_its_flags_and_mode() {
    let sensor = shared();
    let dir = test_dir(&shared_root(), "openat2");
    let path = CString::new(dir.join("via-openat2").to_str().unwrap()).unwrap();
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow { flags: (libc::O_CREAT | libc::O_WRONLY) as u64, mode: 0o640, resolve: 0 };
    // SAFETY: openat2 reads `how` (size given) and the path; the fd is closed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    assert!(fd >= 0, "openat2: {}", std::io::Error::last_os_error());
    // SAFETY: closing the fd we opened.
    unsafe { libc::close(fd as i32) };
    let ev = sensor.wait_for("openat2", |e| is(e, "open") && s(e, &["file", "path"]) == path.to_str().unwrap());
    assert_eq!(u(&ev, &["file", "mode"]), 0o640);
    let flags = get(&ev, &["file", "flags"]);
    assert!(flags.as_array().unwrap().contains(&"O_CREAT".into()), "{flags}");
    assert_eq!(get(&ev, &["file", "result"]).as_i64(), Some(fd));
}

#[test]
fn a_huge_argv_is_truncated_and_says_so() {
    let sensor = shared();
    let marker = format!("huge-{}", unique());
    let filler = "x".repeat(100);
    let mut args = vec![marker.clone()];
    args.extend(std::iter::repeat_n(filler.clone(), 200)); // ~20 KB of argv
    assert!(Command::new("/bin/true").args(&args).status().unwrap().success());
    let ev = sensor.wait_for("exec with a huge argv", |e| {
        is(e, "exec") && get(e, &["process", "args"]).get(1).and_then(Value::as_str) == Some(marker.as_str())
    });
    assert_eq!(get(&ev, &["exec", "args_truncated"]), true);
    assert_eq!(u(&ev, &["exec", "argc"]), 202, "argc is the real count (argv[0] + 201)");
    let got = get(&ev, &["process", "args"]).as_array().unwrap();
    assert!(got.len() > 50 && got.len() < 202, "kept {} args", got.len());
    assert!(got[2..got.len() - 1].iter().all(|a| a == filler.as_str()), "whole args are intact");
}

#[test]
fn a_path_deeper_than_the_walk_bound_is_flagged_and_still_complete() {
    let sensor = shared();
    let mut deep = test_dir(&shared_root(), "deep");
    for i in 0..70 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let file = deep.join("leaf.txt");
    std::fs::write(&file, b"x").unwrap();
    let ev = sensor.wait_for("deep open", |e| {
        is(e, "open") && u(e, &["process", "pid"]) == me() && s(e, &["file", "path"]) == file.to_str().unwrap()
    });
    assert_eq!(get(&ev, &["file", "truncated"]), true, "{ev}");
    assert_eq!(get(&ev, &["file", "resolved"]), false, "taken from the caller's string: {ev}");
}

/// The mechanism per capability `sensor probe --json` reports on this kernel.
fn probe_mechanisms() -> Vec<Value> {
    let out = Command::new(sensor_e2e::sensor_bin()).args(["probe", "--json"]).output().unwrap();
    assert!(out.status.success(), "sensor probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("probe --json is JSON");
    report["capabilities"].as_array().expect("capabilities").clone()
}

/// The kernel decides, by loading: `sensor run` logs the mechanism of every
/// capability at start, the same one `sensor probe` reports, and a preferred
/// variant the kernel refused is logged with its program and the kernel's
/// reason (on the build machines' kernel fexit does not load, so this is the
/// fallback path). In the VM, SENSOR_E2E_EXPECT_MECHANISMS ("cap=kind ...")
/// pins what that kernel must get, so a variant that silently stopped
/// loading fails here rather than passing through the tracepoints.
#[test]
fn each_capability_gets_a_mechanism_by_loading_and_it_is_logged() {
    let sensor = shared();
    let caps = probe_mechanisms();
    let log = sensor.stderr();
    let kind_of =
        |cap: &str| caps.iter().find(|c| c["capability"] == cap).map(|c| c["kind"].as_str().unwrap().to_string());
    for cap in ["exec", "file.open", "file.modify", "connect.unix", "connect.tcp"] {
        assert!(kind_of(cap).is_some(), "probe reports no mechanism for {cap}: {caps:?}");
    }
    for c in &caps {
        let (cap, mechanism) = (c["capability"].as_str().unwrap(), c["mechanism"].as_str().unwrap());
        assert!(
            log.contains(&format!("capability {cap}: {mechanism}")),
            "start log lacks the mechanism of {cap} ({mechanism}):\n{log}"
        );
        if let Some(why) = c.get("fallback_reason").and_then(Value::as_str) {
            assert!(why.starts_with("fexit_") || why.starts_with("SENSOR_KERNEL_PREFER"), "{cap}: {why}");
            assert!(log.contains(&format!("capability {cap}: fexit not used ({why})")), "{cap}:\n{log}");
        }
    }
    assert_eq!(kind_of("exec").as_deref(), Some("tp_btf"), "exec is tp_btf on every kernel");
    if let Ok(expect) = std::env::var("SENSOR_E2E_EXPECT_MECHANISMS") {
        for pair in expect.split_whitespace() {
            let (cap, kind) = pair.split_once('=').expect("cap=kind");
            assert_eq!(kind_of(cap).as_deref(), Some(kind), "{cap} on this kernel: {caps:?}");
        }
    }
}

/// open(2) and creat(2), the legacy syscalls, report the caller's own flags
/// and mode through either mechanism (do_sys_openat2, where the fexit variant
/// hooks, sees O_LARGEFILE added and a mode without O_CREAT cleared), and the
/// syscall that made them.
#[test]
fn legacy_open_and_creat_report_the_callers_flags_and_mode() {
    let sensor = shared();
    let dir = test_dir(&shared_root(), "legacy");
    let made = dir.join("made.txt");
    let made_c = CString::new(made.to_str().unwrap()).unwrap();
    // SAFETY: valid NUL-terminated paths; the fds are closed below.
    let (creat_fd, open_fd) = unsafe {
        let c = libc::syscall(libc::SYS_creat, made_c.as_ptr(), 0o640);
        let o = libc::syscall(libc::SYS_open, made_c.as_ptr(), libc::O_RDONLY, 0o777);
        (c, o)
    };
    assert!(creat_fd >= 0 && open_fd >= 0, "creat {creat_fd}, open {open_fd}");
    // SAFETY: closing fds this test opened.
    unsafe {
        libc::close(creat_fd as i32);
        libc::close(open_fd as i32);
    }
    let path = made.to_str().unwrap();
    let mine = |e: &Value| is(e, "open") && u(e, &["process", "pid"]) == me() && s(e, &["file", "path"]) == path;
    let creat = sensor.wait_for("creat", |e| mine(e) && u(e, &["file", "mode"]) == 0o640);
    assert_eq!(u(&creat, &["file", "flags_raw"]), (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64);
    assert_eq!(get(&creat, &["file", "result"]).as_i64(), Some(creat_fd));
    assert_eq!(get(&creat, &["file", "resolved"]), true);
    let open = sensor.wait_for("open", |e| mine(e) && u(e, &["file", "flags_raw"]) == 0);
    assert_eq!(u(&open, &["file", "mode"]), 0o777, "the mode argument as passed, though O_CREAT is absent");
    assert_eq!(get(&open, &["file", "result"]).as_i64(), Some(open_fd));
}
