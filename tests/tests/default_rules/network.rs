//! Network: mining pools, bad CIDRs, SSH to odd ports, new listeners. The
//! remote end is a throwaway network namespace at 198.51.100.0/24.

use crate::{NOW, check, ev, me, pid_is, sensor};
use sensor_e2e::rules::{NetNs, Scratch, run};
use sensor_e2e::{s, u};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;

fn connect_to(e: &serde_json::Value, addr: &str, port: u16) -> bool {
    s(e, &["type"]) == "connect" && s(e, &["net", "daddr"]) == addr && u(e, &["net", "dport"]) == port as u64
}

/// A DNS query packet for `name` (type A).
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x1e, 0x2e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

#[test]
fn mining_pool_connection() {
    let sensor = sensor();
    let ns = NetNs::new();
    let peer = ns.peer().to_string();
    let _web = ns.listen(8080);
    let _pool = ns.listen(3333);
    // an ordinary port first (near-miss), then the stratum port
    drop(TcpStream::connect(ns.peer_addr(8080)).unwrap());
    drop(TcpStream::connect(ns.peer_addr(3333)).unwrap());
    let a = sensor.wait_for_alert("mining_pool_connection", |e| pid_is(e, me()) && connect_to(e, &peer, 3333));
    check(&a, "mining_pool_connection", "high");
    assert_eq!(ev(&a, &["net", "direction"]), "outbound");
    sensor.no_alert("mining_pool_connection", NOW, |e| pid_is(e, me()) && connect_to(e, &peer, 8080));
    // resolving a pool's name (sent to the namespace: it never leaves the machine)
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.send_to(&dns_query("xmr-eu1.nanopool.org"), ns.peer_addr(53)).unwrap();
    let a = sensor.wait_for_alert("mining_pool_connection", |e| {
        pid_is(e, me()) && s(e, &["type"]) == "dns" && s(e, &["dns", "qname"]) == "xmr-eu1.nanopool.org"
    });
    check(&a, "mining_pool_connection", "high");
}

#[test]
fn connect_to_bad_cidr() {
    let sensor = sensor();
    let ns = NetNs::new();
    let peer = ns.peer().to_string();
    let _remote = ns.listen(8443);
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let lport = local.local_addr().unwrap().port();
    drop(TcpStream::connect(("127.0.0.1", lport)).unwrap());
    drop(TcpStream::connect(ns.peer_addr(8443)).unwrap());
    let a = sensor.wait_for_alert("connect_to_bad_cidr", |e| pid_is(e, me()) && connect_to(e, &peer, 8443));
    check(&a, "connect_to_bad_cidr", "high");
    assert_eq!(ev(&a, &["net", "daddr"]), peer);
    sensor.no_alert("connect_to_bad_cidr", NOW, |e| pid_is(e, me()) && connect_to(e, "127.0.0.1", lport));
}

#[test]
fn ssh_nonstandard_port() {
    let sensor = sensor();
    let ns = NetNs::new();
    let peer = ns.peer().to_string();
    // plain TCP listeners that answer with a line and close: ssh's connect is what matters
    ns.serve(22, 1, b"not-ssh\r\n");
    ns.serve(2222, 1, b"not-ssh\r\n");
    let scratch = Scratch::new("ssh");
    let ssh = |port: &str| {
        let mut c = Command::new("/usr/bin/ssh");
        c.args([
            "-F",
            "/dev/null",
            "-p",
            port,
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            &format!("e2e@{peer}"),
            "true",
        ])
        .env("HOME", scratch.home());
        c
    };
    let (near, _) = run(&mut ssh("22"));
    let (pid, _) = run(&mut ssh("2222"));
    let a = sensor.wait_for_alert("ssh_nonstandard_port", |e| pid_is(e, pid) && connect_to(e, &peer, 2222));
    check(&a, "ssh_nonstandard_port", "medium");
    assert_eq!(ev(&a, &["process", "exe"]), "/usr/bin/ssh");
    sensor.no_alert("ssh_nonstandard_port", NOW, |e| pid_is(e, near));
}

#[test]
fn new_listening_port() {
    let sensor = sensor();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let a = sensor.wait_for_alert("new_listening_port", |e| {
        pid_is(e, me()) && s(e, &["type"]) == "listen" && u(e, &["net", "sport"]) == port as u64
    });
    check(&a, "new_listening_port", "low");
}
