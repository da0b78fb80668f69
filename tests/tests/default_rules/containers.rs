//! Containers: a cgroup named like a docker scope is what the sensor calls a
//! container (it reads /proc/PID/cgroup), so the processes below really run
//! "in container <id>" as far as the rules can tell.

use crate::{NOW, args_contain, check, ev, pid_is, sensor, token, wait_for_graded};
use sensor_e2e::rules::{FakeContainer, Scratch, python, run, run_ok};
use sensor_e2e::s;
use std::process::{Command, Stdio};

fn in_container(e: &serde_json::Value, c: &FakeContainer) -> bool {
    s(e, &["process", "container_id"]) == c.id
}

#[test]
fn package_manager_in_container() {
    let sensor = sensor();
    let container = FakeContainer::new();
    let pkg = format!("sensor-e2e-nonexistent-{}", token());
    // the same command on the host is the near-miss (it fails: no such package)
    let (near, _) = run(Command::new("/usr/bin/apt-get").args(["-s", "install", &pkg]));
    let mut shell = container.shell();
    shell.run(&format!("/usr/bin/apt-get -s install {pkg}"));
    let a = sensor.wait_for_alert("package_manager_in_container", |e| {
        s(e, &["type"]) == "exec" && in_container(e, &container) && args_contain(e, &pkg)
    });
    check(&a, "package_manager_in_container", "medium");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/apt-get");
    sensor.no_alert("package_manager_in_container", NOW, |e| pid_is(e, near));
}

#[test]
fn shell_in_container() {
    let sensor = sensor();
    let container = FakeContainer::new();
    // near-misses: a shell on the host, and `sh -c` as entrypoints run it
    let host = run_ok(Command::new("/usr/bin/bash").arg("-s").stdin(Stdio::null()));
    let entry = run_ok(container.command("/usr/bin/bash").args(["-c", "true"]));
    // a shell reading commands from its stdin, as `docker exec -i ... bash` gives
    let shell = container.shell();
    let a = sensor.wait_for_alert("shell_in_container", |e| pid_is(e, shell.pid()) && s(e, &["type"]) == "exec");
    check(&a, "shell_in_container", "medium");
    assert_eq!(ev(&a, &["process", "container_id"]), container.id);
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/bash");
    sensor.no_alert("shell_in_container", NOW, |e| pid_is(e, host) || pid_is(e, entry));
}

const PACKET_SOCKET: &str = "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()\n";

#[test]
fn raw_packet_socket() {
    sensor(); // running before the behaviour
    let host = run_ok(&mut python(PACKET_SOCKET));
    let a = wait_for_graded("raw_packet_socket", "medium", |e| pid_is(e, host) && s(e, &["type"]) == "socket");
    assert_eq!(ev(&a, &["syscall", "family"]), "AF_PACKET");
    let container = FakeContainer::new();
    let mut shell = container.shell();
    shell.run(&format!("/usr/bin/python3 -c '{PACKET_SOCKET}'"));
    let a =
        wait_for_graded("raw_packet_socket", "high", |e| s(e, &["type"]) == "socket" && in_container(e, &container));
    assert_eq!(ev(&a, &["syscall", "family"]), "AF_PACKET");
}

#[test]
fn cgroup_release_agent_write() {
    let sensor = sensor();
    let scratch = Scratch::new("cgroupv1");
    let mnt = scratch.str("");
    let mnt = mnt.trim_end_matches('/');
    // a private, controller-less v1 hierarchy: it disappears with the namespace
    let script = format!(
        "mount -t cgroup -o none,name=sensor_e2e_{} cgroup {mnt} && echo 0 > {mnt}/notify_on_release && echo /bin/true > {mnt}/release_agent",
        token()
    );
    let pid = run_ok(Command::new("/usr/bin/unshare").args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]));
    let agent = format!("{mnt}/release_agent");
    let a = sensor.wait_for_alert("cgroup_release_agent_write", |e| pid_is(e, pid) && s(e, &["file", "path"]) == agent);
    check(&a, "cgroup_release_agent_write", "critical");
    let notify = format!("{mnt}/notify_on_release");
    let a =
        sensor.wait_for_alert("cgroup_release_agent_write", |e| pid_is(e, pid) && s(e, &["file", "path"]) == notify);
    check(&a, "cgroup_release_agent_write", "critical");
}

#[test]
fn container_runtime_socket_access() {
    let sensor = sensor();
    let scratch = Scratch::new("runtime-sock");
    std::fs::create_dir_all(scratch.join("run")).unwrap();
    let docker = scratch.str("run/docker.sock");
    let other = scratch.str("run/app.sock");
    let _docker_l = std::os::unix::net::UnixListener::bind(&docker).unwrap();
    let _other_l = std::os::unix::net::UnixListener::bind(&other).unwrap();
    let connect = |path: &str| {
        let mut c = Command::new("/usr/bin/socat");
        c.args(["-u", "/dev/null", &format!("UNIX-CONNECT:{path}")]);
        c
    };
    let near = run_ok(&mut connect(&other));
    let host = run_ok(&mut connect(&docker));
    let a = wait_for_graded("container_runtime_socket_access", "high", |e| {
        pid_is(e, host) && s(e, &["type"]) == "connect" && s(e, &["net", "path"]) == docker
    });
    assert_eq!(ev(&a, &["net", "family"]), "unix");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/socat");
    sensor.no_alert("container_runtime_socket_access", NOW, |e| pid_is(e, near));
    // from inside a container: the classic escape
    let container = FakeContainer::new();
    let mut shell = container.shell();
    shell.run(&format!("/usr/bin/socat -u /dev/null UNIX-CONNECT:{docker}"));
    wait_for_graded("container_runtime_socket_access", "critical", |e| {
        in_container(e, &container) && s(e, &["type"]) == "connect" && s(e, &["net", "path"]) == docker
    });
}

#[test]
fn container_escape_mount_ns() {
    let sensor = sensor();
    // near-misses on the host: a private mount namespace, nsenter into a non-init process
    let near_unshare = run_ok(Command::new("/usr/bin/unshare").args(["--mount", "/usr/bin/true"]));
    let mut sleeper = Command::new("/usr/bin/sleep").arg("60").spawn().unwrap();
    let (near_nsenter, _) =
        run(Command::new("/usr/bin/nsenter").args(["--target", &sleeper.id().to_string(), "--uts", "/usr/bin/true"]));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    // entering init's mount namespace (harmless: /usr/bin/true; in a sandbox
    // that denies it, the attempt is still the behaviour)
    let (host, _) = run(Command::new("/usr/bin/nsenter").args(["-t", "1", "-m", "--", "/usr/bin/true"]));
    let a = wait_for_graded("container_escape_mount_ns", "high", |e| pid_is(e, host) && s(e, &["type"]) == "exec");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/nsenter");
    sensor.no_alert("container_escape_mount_ns", NOW, |e| pid_is(e, near_unshare) || pid_is(e, near_nsenter));
    // a new mount namespace from inside a container
    let container = FakeContainer::new();
    let mut shell = container.shell();
    shell.run("/usr/bin/unshare --mount /usr/bin/true");
    wait_for_graded("container_escape_mount_ns", "critical", |e| {
        in_container(e, &container) && s(e, &["type"]) == "namespace"
    });
}
