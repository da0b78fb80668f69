//! The security-relevant syscalls the default rules need, performed for real
//! (safely: on children, test-owned sockets and mounts) and asserted.

use sensor_e2e::{get, s, shared, test_dir, u, unique};
use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::process::Command;

fn me() -> u64 {
    std::process::id() as u64
}

fn mine(e: &Value, ty: &str) -> bool {
    s(e, &["type"]) == ty && u(e, &["process", "pid"]) == me()
}

#[test]
fn ptrace_attach_names_the_target() {
    let sensor = shared();
    let mut child = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    // SAFETY: seize and detach our own child; no memory is touched.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    child.kill().unwrap();
    child.wait().unwrap();
    let ev = sensor.wait_for("ptrace", |e| mine(e, "ptrace") && u(e, &["syscall", "target_pid"]) == pid as u64);
    assert_eq!(s(&ev, &["syscall", "request_name"]), "PTRACE_SEIZE");
    assert_eq!(get(&ev, &["syscall", "success"]), true);
}

#[test]
fn memfd_create_reports_its_name() {
    let sensor = shared();
    let name = std::ffi::CString::new(format!("sensor-memfd-{}", unique() % 100000)).unwrap();
    // SAFETY: creates an anonymous file we close at once.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    unsafe { libc::close(fd) };
    let ev = sensor.wait_for("memfd_create", |e| {
        mine(e, "memfd_create") && s(e, &["syscall", "memfd_name"]) == name.to_str().unwrap()
    });
    assert_eq!(get(&ev, &["syscall", "result"]).as_i64(), Some(fd as i64));
    assert_eq!(u(&ev, &["syscall", "flags"]), libc::MFD_CLOEXEC as u64);
}

#[test]
fn packet_sockets_are_reported_and_ordinary_ones_are_not() {
    let sensor = shared();
    // SAFETY: plain socket creation, closed at once.
    let (tcp, packet) = unsafe {
        let tcp = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let packet = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
        (tcp, packet)
    };
    assert!(tcp >= 0 && packet >= 0, "{}", std::io::Error::last_os_error());
    unsafe {
        libc::close(tcp);
        libc::close(packet);
    }
    let ev = sensor.wait_for("AF_PACKET socket", |e| {
        mine(e, "socket") && get(e, &["syscall", "result"]).as_i64() == Some(packet as i64)
    });
    assert_eq!(s(&ev, &["syscall", "family"]), "AF_PACKET");
    assert_eq!(u(&ev, &["syscall", "type"]), libc::SOCK_RAW as u64);
    let tcp_events = sensor.matching(|e| mine(e, "socket") && s(e, &["syscall", "family"]) == "AF_INET");
    assert!(tcp_events.is_empty(), "an ordinary TCP socket was reported: {tcp_events:?}");
}

#[test]
fn a_shell_wired_to_a_socket_is_seen_as_dup_onto_stdout() {
    let sensor = shared();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // the reverse-shell pattern: bash opens a TCP socket and makes it its
    // stdout; before that, an ordinary redirection of stderr to a file
    let mut child = Command::new("/bin/bash")
        .arg("-c")
        .arg(format!("exec 2>/dev/null; exec 3<>/dev/tcp/127.0.0.1/{port}; exec 1>&3; echo connected"))
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "connected\n");
    let pid = child.id() as u64;
    child.wait().unwrap();
    let ev = sensor.wait_for("dup2 onto fd 1", |e| {
        s(e, &["type"]) == "dup" && u(e, &["process", "pid"]) == pid && u(e, &["syscall", "newfd"]) == 1
    });
    assert_eq!(get(&ev, &["syscall", "oldfd_is_socket"]), true);
    assert_eq!(s(&ev, &["process", "exe"]), "/usr/bin/bash");
    let to_stderr = sensor
        .matching(|e| s(e, &["type"]) == "dup" && u(e, &["process", "pid"]) == pid && u(e, &["syscall", "newfd"]) == 2);
    assert!(to_stderr.is_empty(), "a file dup'ed onto stderr is not reported: {to_stderr:?}");
}

#[test]
fn setuid_family_calls_are_reported() {
    let sensor = shared();
    let st = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/true"])
        .status()
        .unwrap();
    assert!(st.success());
    let ev = sensor.wait_for("setresuid by setpriv", |e| {
        s(e, &["type"]) == "setuid" && u(e, &["process", "ppid"]) == me() && s(e, &["syscall", "name"]) == "setresuid"
    });
    assert!(get(&ev, &["syscall", "ids"]).as_array().unwrap().contains(&Value::from(65534)), "{ev}");
}

#[test]
fn mount_and_unshare_are_reported() {
    let sensor = shared();
    let dir = test_dir(&std::env::temp_dir(), "sensor-mount");
    let target = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: mounts a small tmpfs on a directory this test owns, then unmounts it.
    let rc = unsafe {
        libc::mount(c"sensor-test".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, c"size=1m".as_ptr().cast())
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    unsafe { libc::umount(target.as_ptr()) };
    let ev = sensor.wait_for("mount", |e| mine(e, "mount") && s(e, &["syscall", "target"]) == dir.to_str().unwrap());
    assert_eq!(s(&ev, &["syscall", "fstype"]), "tmpfs");
    assert_eq!(s(&ev, &["syscall", "source"]), "sensor-test");

    let st = Command::new("unshare").args(["--uts", "/bin/true"]).status().unwrap();
    assert!(st.success());
    let ev = sensor.wait_for("unshare", |e| s(e, &["type"]) == "namespace" && u(e, &["process", "ppid"]) == me());
    assert_eq!(s(&ev, &["syscall", "name"]), "unshare");
    assert_eq!(u(&ev, &["syscall", "flags"]), libc::CLONE_NEWUTS as u64);
}

#[test]
fn bpf_program_loads_by_others_are_reported() {
    let sensor = shared();
    // `sensor probe` is another process loading small programs
    let out = Command::new(sensor_e2e::sensor_bin()).args(["probe", "--json"]).output().unwrap();
    assert!(out.status.success());
    let ev = sensor.wait_for("BPF_PROG_LOAD by sensor probe", |e| {
        s(e, &["type"]) == "bpf"
            && u(e, &["process", "ppid"]) == me()
            && s(e, &["syscall", "prog_name"]).starts_with("probe_")
    });
    assert_eq!(s(&ev, &["syscall", "cmd"]), "BPF_PROG_LOAD");
}

#[test]
fn module_loads_are_reported_even_when_they_fail() {
    let sensor = shared();
    let f = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: /dev/null is not a module: the kernel refuses it; nothing is loaded.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"sensor_test=1".as_ptr(), 0) };
    assert!(rc < 0);
    let errno = std::io::Error::last_os_error().raw_os_error();
    let has_tracepoint = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|t| std::path::Path::new(t).join("events/syscalls/sys_enter_finit_module").exists());
    if !has_tracepoint {
        // A kernel built without module support has neither the syscall nor
        // its tracepoint: no module can be loaded, so there is nothing to see.
        assert_eq!(errno, Some(libc::ENOSYS), "no finit_module tracepoint, yet the syscall exists");
        eprintln!("NOTE: this kernel has no loadable-module support (finit_module: ENOSYS); module_load cannot occur");
        return;
    }
    let ev = sensor.wait_for("finit_module", |e| mine(e, "module_load"));
    assert_eq!(s(&ev, &["syscall", "name"]), "finit_module");
    assert_eq!(s(&ev, &["syscall", "path"]), "/dev/null");
    assert_eq!(s(&ev, &["syscall", "params"]), "sensor_test=1");
    assert_eq!(get(&ev, &["syscall", "success"]), false);
}

#[test]
fn unix_socket_connects_are_connect_events_with_the_socket_path() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    let sensor = shared();
    let dir = test_dir(&sensor_e2e::shared_root(), "unix");
    let path = dir.join("docker.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    let _conn = UnixStream::connect(&path).unwrap();
    let abstract_name = format!("sensor-e2e-{}", unique());
    let addr = SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let _abstract_listener = UnixListener::bind_addr(&addr).unwrap();
    let _abstract_conn = UnixStream::connect_addr(&addr).unwrap();
    // a socket that does not exist: the ENOENT every lookup without nscd makes
    let missing = dir.join("missing.sock");
    assert!(UnixStream::connect(&missing).is_err());

    let path_str = path.to_str().unwrap().to_string();
    let ev = sensor.wait_for("unix connect", |e| mine(e, "connect") && s(e, &["net", "path"]) == path_str);
    assert_eq!(s(&ev, &["net", "family"]), "unix");
    assert_eq!(s(&ev, &["net", "direction"]), "outbound");
    assert_eq!(get(&ev, &["net", "success"]), true);
    let at = format!("@{abstract_name}");
    let ev = sensor.wait_for("abstract unix connect", |e| mine(e, "connect") && s(e, &["net", "path"]) == at);
    assert_eq!(s(&ev, &["net", "family"]), "unix");
    let missing_str = missing.to_str().unwrap().to_string();
    assert!(
        sensor.matching(|e| mine(e, "connect") && s(e, &["net", "path"]) == missing_str).is_empty(),
        "a connect to a missing socket was reported"
    );
}

#[test]
fn exec_of_a_binary_written_after_its_parent_started_is_flagged() {
    let sensor = shared();
    let dir = test_dir(&sensor_e2e::shared_root(), "drift");
    // this test process (the parent) started before the copy is written
    let dropped = dir.join("dropped-sleep");
    std::fs::copy("/bin/sleep", &dropped).unwrap();
    let mut fresh = Command::new(&dropped).arg("2").spawn().unwrap();
    let mut installed = Command::new("/bin/sleep").arg("2").spawn().unwrap();
    let (fresh_pid, installed_pid) = (fresh.id() as u64, installed.id() as u64);
    let exec_of = |pid: u64| move |e: &Value| s(e, &["type"]) == "exec" && u(e, &["process", "pid"]) == pid;
    let ev = sensor.wait_for("exec of the dropped binary", exec_of(fresh_pid));
    let ev_installed = sensor.wait_for("exec of /bin/sleep", exec_of(installed_pid));
    fresh.kill().unwrap();
    installed.kill().unwrap();
    fresh.wait().unwrap();
    installed.wait().unwrap();
    assert_eq!(get(&ev, &["exec", "written_after_parent_start"]), true, "{ev}");
    assert_eq!(get(&ev_installed, &["exec", "written_after_parent_start"]), false, "{ev_installed}");
}
