//! Feeds the topology graph from enriched events and publishes its
//! snapshot for the metrics endpoint (and, later, the admin socket).

use crate::decode::Body;
use crate::event::Event;
use sensor_bpf::wire::{EV_UNIX_CONNECT, NET_DIR_OUTBOUND};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use topology::{CloseStats, Graph, Observation, Proc};

/// The latest topology snapshot, shared with readers on other threads.
#[derive(Clone, Default)]
pub struct TopologySlot(Arc<Mutex<Option<topology::Snapshot>>>);

impl TopologySlot {
    pub fn get(&self) -> Option<topology::Snapshot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn put(&self, s: topology::Snapshot) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }
}

/// Names network namespaces for service identities: the `ip netns` name
/// when there is one (a bind mount in /run/netns), else `netns:INODE`; the
/// sensor's own namespace (the host's, in production) has none.
struct NetnsNames {
    host: Option<u64>,
    names: std::collections::HashMap<u64, Arc<str>>,
    last_scan: Option<Instant>,
}

impl NetnsNames {
    fn new() -> Self {
        let host = std::fs::read_link("/proc/self/ns/net")
            .ok()
            .and_then(|l| l.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok());
        NetnsNames { host, names: Default::default(), last_scan: None }
    }

    fn label(&mut self, inode: Option<u64>) -> Option<Arc<str>> {
        let inode = inode.filter(|i| Some(*i) != self.host)?;
        // a namespace named since the last look: look again (bounded rate)
        if !self.names.contains_key(&inode) && self.last_scan.is_none_or(|t| t.elapsed() >= Duration::from_millis(100))
        {
            self.scan();
        }
        Some(self.names.get(&inode).cloned().unwrap_or_else(|| Arc::from(format!("netns:{inode}"))))
    }

    fn scan(&mut self) {
        use std::os::unix::fs::MetadataExt;
        self.last_scan = Some(Instant::now());
        self.names.clear();
        let Ok(dir) = std::fs::read_dir("/run/netns") else { return };
        for e in dir.flatten().take(4096) {
            if let (Ok(md), Some(name)) = (std::fs::metadata(e.path()), e.file_name().to_str()) {
                self.names.insert(md.ino(), Arc::from(name));
            }
        }
    }
}

/// Owned by the pipeline thread.
pub struct Topology {
    graph: Graph,
    slot: TopologySlot,
    last_publish: Instant,
    snapshot_every: Option<Duration>,
    last_snapshot: Instant,
    /// DNS response codes counted as failed requests.
    dns_errors: Vec<String>,
    netns: NetnsNames,
}

const PUBLISH_EVERY: Duration = Duration::from_secs(1);

impl Topology {
    pub fn new(cfg: &topology::TopologyConfig, slot: TopologySlot) -> Self {
        Topology {
            graph: Graph::new(cfg),
            slot,
            last_publish: Instant::now() - PUBLISH_EVERY,
            snapshot_every: (cfg.snapshot_interval_secs > 0).then(|| Duration::from_secs(cfg.snapshot_interval_secs)),
            last_snapshot: Instant::now(),
            dns_errors: cfg.dns_error_rcodes.clone(),
            netns: NetnsNames::new(),
        }
    }

    pub fn observe(&mut self, ev: &Event) {
        let p = &ev.process;
        let netns = self.netns.label(p.netns);
        let proc = Proc {
            pid: ev.hdr.pid,
            exe: &p.exe,
            container_id: p.container_id.as_deref(),
            systemd_unit: p.systemd_unit.as_deref(),
            netns: netns.as_deref(),
        };
        let now = Instant::now();
        match &ev.body {
            Body::Net(n) => {
                let local = SocketAddr::new(n.saddr, n.sport);
                let remote = SocketAddr::new(n.daddr, n.dport);
                let obs = match ev.kind {
                    "listen" => Observation::Listen { proc, local },
                    "connect" => Observation::Connect {
                        proc,
                        sock_id: n.sock_id,
                        local,
                        remote,
                        ok: n.error == 0,
                        latency_ns: n.latency_ns,
                    },
                    "accept" => Observation::Accept { proc, sock_id: n.sock_id, local, remote },
                    "close" => Observation::Close {
                        sock_id: n.sock_id,
                        outbound: n.direction == NET_DIR_OUTBOUND,
                        stats: CloseStats {
                            bytes_sent: n.bytes_sent,
                            bytes_received: n.bytes_received,
                            duration_ns: n.duration_ns,
                            srtt_us: n.srtt_us,
                            retransmits: n.retransmits,
                        },
                    },
                    _ => return,
                };
                self.graph.observe(&obs, now);
            }
            Body::Dns(d) => {
                let Some(msg) = ev.dns.as_ref().filter(|m| m.response) else { return };
                for a in &msg.answers {
                    if let Ok(addr) = a.data.parse::<IpAddr>() {
                        self.graph.observe(&Observation::DnsAnswer { name: &msg.qname, addr }, now);
                    }
                }
                // the exchange, on the client's edge to its resolver (a response it received)
                if let Some(latency_ns) = msg.latency_ns {
                    let failed = self.dns_errors.iter().any(|r| r == msg.rcode);
                    let server = SocketAddr::new(d.daddr, d.dport);
                    let obs =
                        Observation::Exchange { proc, server, protocol: topology::Protocol::Dns, failed, latency_ns };
                    self.graph.observe(&obs, now);
                }
            }
            // AF_UNIX connects are local IPC, not topology edges (yet)
            Body::Syscall(_) if ev.hdr.ty == EV_UNIX_CONNECT => {}
            _ => {}
        }
    }

    /// Records edge activity for the anomaly detector (see [`topology::Activity`]).
    pub fn record_activity(&mut self, cap: usize) {
        self.graph.record_activity(cap);
    }

    pub fn drain_activity(&mut self, out: &mut Vec<topology::Activity>) {
        self.graph.drain_activity(out);
    }

    pub fn activity_dropped(&self) -> u64 {
        self.graph.activity_dropped()
    }

    /// The service that started an exec'd process: its parent's (the
    /// parent's pid, executable and namespaces), named as on the edges.
    pub fn parent_service(&mut self, ev: &Event) -> Option<Arc<str>> {
        let p = &ev.process;
        let parent_exe = p.lineage.first()?;
        let netns = self.netns.label(p.netns);
        let proc = Proc {
            pid: ev.hdr.ppid,
            exe: parent_exe,
            container_id: p.container_id.as_deref(),
            systemd_unit: p.systemd_unit.as_deref(),
            netns: netns.as_deref(),
        };
        Some(self.graph.service_for(&proc))
    }

    /// A completed L7 request, seen by one end of its connection.
    pub fn request(&mut self, c: &crate::l7::Completed) {
        let obs = Observation::Request {
            sock_id: c.sock_id,
            client_side: c.client_side,
            protocol: c.protocol,
            failed: c.failed,
            latency_ns: c.latency_ns,
        };
        self.graph.observe(&obs, Instant::now());
    }

    /// Settles connections whose other end did not show, and publishes the
    /// snapshot about once a second. Called on every pipeline turn. Returns
    /// a `topology_snapshot` record when one is due for the audit trail.
    pub fn tick(&mut self) -> Option<serde_json::Value> {
        let now = Instant::now();
        self.graph.tick(now);
        if now.duration_since(self.last_publish) >= PUBLISH_EVERY {
            self.slot.put(self.graph.snapshot());
            self.last_publish = now;
        }
        let every = self.snapshot_every?;
        if now.duration_since(self.last_snapshot) < every {
            return None;
        }
        self.last_snapshot = now;
        Some(self.snapshot_record())
    }

    fn snapshot_record(&self) -> serde_json::Value {
        serde_json::json!({"type": "topology_snapshot", "topology": self.graph.snapshot()})
    }

    /// The final state, at shutdown (also for the audit trail).
    pub fn publish_now(&mut self) -> serde_json::Value {
        self.slot.put(self.graph.snapshot());
        self.snapshot_record()
    }
}
