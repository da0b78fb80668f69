//! The graph: edges keyed by (client service, server service), joined from
//! both ends of each connection, with bounded tables everywhere.

use crate::identity::Namer;
use crate::{CloseStats, Observation, Proc, Protocol, TopologyConfig};
use lru::LruCache;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Latency histogram bucket bounds, seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// L7 requests remembered per connection still waiting to be joined.
const PENDING_REQUESTS_MAX: usize = 64;

const PENDING_MAX: usize = 65_536;
const SOCKETS_MAX: usize = 65_536;
const NAMES_MAX: usize = 4_096;
const LISTENERS_MAX: usize = 16_384;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Histogram {
    /// Cumulative counts per bound of [`LATENCY_BUCKETS`].
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (b, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    /// The q-quantile's bucket bound (an upper estimate), or None when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil() as u64;
        Some(
            LATENCY_BUCKETS
                .iter()
                .zip(self.buckets)
                .find(|(_, c)| *c >= rank)
                .map(|(b, _)| *b)
                .unwrap_or(f64::INFINITY),
        )
    }
}

/// Counters of one edge, client -> server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeStats {
    pub connections: u64,
    pub failed: u64,
    pub connect_latency: Histogram,
    pub closed: u64,
    /// Client to server.
    pub bytes_sent: u64,
    /// Server to client.
    pub bytes_received: u64,
    pub duration_seconds_sum: f64,
    pub retransmits: u64,
    pub srtt_us_sum: u64,
    /// L7 requests by protocol: (requests, failed, latency).
    pub requests: BTreeMap<&'static str, RequestStats>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestStats {
    pub requests: u64,
    pub failed: u64,
    pub latency: Histogram,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphStats {
    pub edges: usize,
    pub edges_evicted: u64,
    pub pending: usize,
    /// Connects and accepts whose other end never showed within the join window.
    pub unjoined: u64,
    pub joined: u64,
    pub pending_evicted: u64,
    /// L7 requests on a connection the graph did not know (e.g. opened before the sensor).
    pub requests_unattributed: u64,
}

/// What the graph counted, in order, for consumers that learn from edges
/// (the anomaly detector). Off unless [`Graph::record_activity`] is called.
#[derive(Debug, Clone)]
pub enum Activity {
    /// A connection (or a datagram exchange) on an edge. `*_local`: that
    /// end is a service on this host (else an address or a DNS name).
    Connection { client: Arc<str>, server: Arc<str>, client_local: bool, server_local: bool, ok: bool },
    /// An L7 request counted on an edge.
    Request { client: Arc<str>, server: Arc<str>, protocol: Protocol, failed: bool, latency_ns: u64 },
    /// A service listens on a port.
    Listen { service: Arc<str>, port: u16 },
}

type EdgeKey = (Arc<str>, Arc<str>);
/// A connection's addresses from the client's side: (client addr, server addr).
type Tuple = (SocketAddr, SocketAddr);

enum Pending {
    Connect { client: Arc<str>, sock_id: u64, latency_ns: u64, close: Option<CloseStats> },
    Accept { server: Arc<str>, sock_id: u64, close: Option<CloseStats> },
}

#[derive(Clone, Copy)]
struct RequestObs {
    client_side: bool,
    protocol: Protocol,
    failed: bool,
    latency_ns: u64,
}

struct PendingEntry {
    at: Instant,
    what: Pending,
    /// L7 requests seen before the other end joined.
    requests: Vec<RequestObs>,
}

/// The two sockets of a joined connection, and the client end's close if it came first.
struct Joined {
    client_sock: u64,
    server_sock: u64,
    client_close: Option<CloseStats>,
}

/// Which end a tracked socket is, its edge, and whether both ends are on
/// this host (then the client end carries the totals and the server end the
/// request latency).
#[derive(Clone)]
struct SockRef {
    edge: EdgeKey,
    client_side: bool,
    joined: bool,
}

pub struct Graph {
    namer: Namer,
    window: Duration,
    edges: LruCache<EdgeKey, EdgeStats>,
    /// (address, port) -> service; an unspecified address listens on all.
    listeners: LruCache<(IpAddr, u16), Arc<str>>,
    /// A pid's lowest listening port: its identity when it connects out.
    serving: LruCache<u32, u16>,
    /// Addresses seen as local ends (listen, connect, accept).
    local_ips: LruCache<IpAddr, ()>,
    pending: HashMap<Tuple, PendingEntry>,
    order: VecDeque<(Instant, Tuple)>,
    sock_tuple: LruCache<u64, Tuple>,
    socks: LruCache<u64, SockRef>,
    names: LruCache<IpAddr, Arc<str>>,
    stats: GraphStats,
    /// Recorded activity (bounded) and what did not fit.
    activity: Option<(Vec<Activity>, usize)>,
    activity_dropped: u64,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).expect("non-zero")
}

fn addr_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{port}"),
            None => format!("[{v6}]:{port}"),
        },
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

/// v4-mapped v6 addresses are the v4 address (dual-stack sockets).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn canon_sa(sa: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(sa.ip()), sa.port())
}

impl Graph {
    pub fn new(cfg: &TopologyConfig) -> Graph {
        Graph {
            namer: Namer::new(cfg),
            window: Duration::from_millis(cfg.join_window_ms),
            edges: LruCache::new(cap(cfg.max_edges)),
            listeners: LruCache::new(cap(LISTENERS_MAX)),
            serving: LruCache::new(cap(LISTENERS_MAX)),
            local_ips: LruCache::new(cap(1024)),
            pending: HashMap::new(),
            order: VecDeque::new(),
            sock_tuple: LruCache::new(cap(SOCKETS_MAX)),
            socks: LruCache::new(cap(SOCKETS_MAX)),
            names: LruCache::new(cap(NAMES_MAX)),
            stats: GraphStats::default(),
            activity: None,
            activity_dropped: 0,
        }
    }

    /// Records [`Activity`] from now on, at most `cap` between two drains
    /// (the excess is counted in [`Graph::activity_dropped`]).
    pub fn record_activity(&mut self, cap: usize) {
        self.activity = Some((Vec::new(), cap.max(1)));
    }

    /// Moves the recorded activity to `out`.
    pub fn drain_activity(&mut self, out: &mut Vec<Activity>) {
        if let Some((a, _)) = &mut self.activity {
            out.append(a);
        }
    }

    pub fn activity_dropped(&self) -> u64 {
        self.activity_dropped
    }

    fn push_activity(&mut self, a: impl FnOnce() -> Activity) {
        if let Some((v, cap)) = &mut self.activity {
            if v.len() < *cap {
                v.push(a());
            } else {
                self.activity_dropped += 1;
            }
        }
    }

    /// The service a process belongs to (as it would be named on an edge).
    pub fn service_for(&mut self, p: &Proc) -> Arc<str> {
        self.service_of(p)
    }

    /// Whether `addr` is a listener on this host (what `server_at` names a service).
    fn is_local_server(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip();
        if self.listeners.contains(&(ip, addr.port())) {
            return true;
        }
        let any = if ip.is_ipv4() { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) };
        (ip.is_loopback() || self.local_ips.contains(&ip))
            && [any, IpAddr::from([0u8; 4])].iter().any(|w| self.listeners.contains(&(*w, addr.port())))
    }

    pub fn stats(&self) -> GraphStats {
        GraphStats { edges: self.edges.len(), pending: self.pending.len(), ..self.stats.clone() }
    }

    fn service_of(&mut self, p: &Proc) -> Arc<str> {
        let port = self.serving.get(&p.pid).copied();
        self.namer.service(p, port)
    }

    fn serves(&mut self, p: &Proc, port: u16) -> Arc<str> {
        let lowest = match self.serving.get(&p.pid) {
            Some(&known) if known <= port => known,
            _ => port,
        };
        self.serving.put(p.pid, lowest);
        self.namer.service(p, Some(lowest))
    }

    /// The server at `addr`: a local listener, else the remote address
    /// (named by DNS when the sensor saw an answer for it).
    fn server_at(&mut self, addr: SocketAddr) -> Arc<str> {
        let ip = addr.ip();
        if let Some(s) = self.listeners.get(&(ip, addr.port())) {
            return s.clone();
        }
        if ip.is_loopback() || self.local_ips.contains(&ip) {
            let any = if ip.is_ipv4() { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) };
            for wildcard in [any, IpAddr::from([0u8; 4])] {
                if let Some(s) = self.listeners.get(&(wildcard, addr.port())) {
                    return s.clone();
                }
            }
        }
        match self.names.get(&ip) {
            Some(name) => Arc::from(format!("{name}:{}", addr.port())),
            None => Arc::from(addr_port(ip, addr.port())),
        }
    }

    /// A remote client: its address without the ephemeral port.
    fn client_at(&mut self, ip: IpAddr) -> Arc<str> {
        match self.names.get(&ip) {
            Some(name) => name.clone(),
            None => Arc::from(ip.to_string()),
        }
    }

    fn edge(&mut self, key: EdgeKey) -> &mut EdgeStats {
        if !self.edges.contains(&key) && self.edges.len() == self.edges.cap().get() {
            self.edges.pop_lru();
            self.stats.edges_evicted += 1;
        }
        self.edges.get_or_insert_mut(key, EdgeStats::default)
    }

    fn apply_close(&mut self, key: &EdgeKey, client_side: bool, c: &CloseStats) {
        let e = self.edge(key.clone());
        e.closed += 1;
        let (to_server, to_client) =
            if client_side { (c.bytes_sent, c.bytes_received) } else { (c.bytes_received, c.bytes_sent) };
        e.bytes_sent += to_server;
        e.bytes_received += to_client;
        e.duration_seconds_sum += c.duration_ns as f64 / 1e9;
        e.retransmits += c.retransmits as u64;
        e.srtt_us_sum += c.srtt_us as u64;
    }

    fn count_connection(&mut self, key: EdgeKey, ok: bool, latency_ns: Option<u64>) {
        let e = self.edge(key);
        e.connections += 1;
        if !ok {
            e.failed += 1;
        }
        if let Some(ns) = latency_ns {
            e.connect_latency.observe(ns as f64 / 1e9);
        }
    }

    fn push_pending(&mut self, tuple: Tuple, what: Pending, now: Instant) {
        if self.pending.len() >= PENDING_MAX
            && let Some((_, oldest)) = self.order.pop_front()
            && let Some(p) = self.pending.remove(&oldest)
        {
            self.stats.pending_evicted += 1;
            self.settle(oldest, p);
        }
        self.pending.insert(tuple, PendingEntry { at: now, what, requests: Vec::new() });
        self.order.push_back((now, tuple));
    }

    /// A pending end whose other end did not show: count it alone.
    fn settle(&mut self, tuple: Tuple, p: PendingEntry) {
        self.stats.unjoined += 1;
        let (key, sock_id, client_side, close, latency) = match p.what {
            Pending::Connect { client, sock_id, latency_ns, close } => {
                let server = self.server_at(tuple.1);
                ((client, server), sock_id, true, close, Some(latency_ns))
            }
            Pending::Accept { server, sock_id, close } => {
                let client = self.client_at(tuple.0.ip());
                ((client, server), sock_id, false, close, None)
            }
        };
        let server_local = !client_side || self.is_local_server(tuple.1);
        self.push_activity(|| Activity::Connection {
            client: key.0.clone(),
            server: key.1.clone(),
            client_local: client_side,
            server_local,
            ok: true,
        });
        self.count_connection(key.clone(), true, latency);
        // the only end this host saw: its requests count
        for r in &p.requests {
            self.count_request(&key, r);
        }
        match close {
            Some(c) => self.apply_close(&key, client_side, &c),
            None => {
                self.socks.put(sock_id, SockRef { edge: key, client_side, joined: false });
            }
        }
    }

    fn count_request(&mut self, key: &EdgeKey, r: &RequestObs) {
        self.push_activity(|| Activity::Request {
            client: key.0.clone(),
            server: key.1.clone(),
            protocol: r.protocol,
            failed: r.failed,
            latency_ns: r.latency_ns,
        });
        let e = self.edge(key.clone());
        let s = e.requests.entry(r.protocol.name()).or_default();
        s.requests += 1;
        if r.failed {
            s.failed += 1;
        }
        s.latency.observe(r.latency_ns as f64 / 1e9);
    }

    /// Both ends of a connection met: count it once, with the server end's
    /// buffered requests, and track both sockets. The client end carries the
    /// close totals; the server end's close is not counted, its requests are.
    fn join(&mut self, key: EdgeKey, latency_ns: u64, requests: &[RequestObs], ends: Joined) {
        self.stats.joined += 1;
        self.push_activity(|| Activity::Connection {
            client: key.0.clone(),
            server: key.1.clone(),
            client_local: true,
            server_local: true,
            ok: true,
        });
        self.count_connection(key.clone(), true, Some(latency_ns));
        self.joined_requests(&key, requests);
        match ends.client_close {
            Some(c) => self.apply_close(&key, true, &c),
            None => {
                self.socks.put(ends.client_sock, SockRef { edge: key.clone(), client_side: true, joined: true });
            }
        }
        self.socks.put(ends.server_sock, SockRef { edge: key, client_side: false, joined: true });
    }

    /// Requests seen by the server end of a joined connection count; the
    /// client end's view of the same requests does not (no double count).
    fn joined_requests(&mut self, key: &EdgeKey, requests: &[RequestObs]) {
        for r in requests.iter().filter(|r| !r.client_side) {
            self.count_request(key, r);
        }
    }

    /// Settles what waited longer than the join window. Call regularly.
    pub fn tick(&mut self, now: Instant) {
        while let Some(&(at, tuple)) = self.order.front() {
            if now.duration_since(at) < self.window {
                break;
            }
            self.order.pop_front();
            // the entry may have been joined (removed) or replaced since
            if self.pending.get(&tuple).is_some_and(|p| p.at == at)
                && let Some(p) = self.pending.remove(&tuple)
            {
                self.settle(tuple, p);
            }
        }
    }

    pub fn observe(&mut self, obs: &Observation, now: Instant) {
        match obs {
            Observation::Listen { proc, local } => {
                let local = canon_sa(*local);
                let service = self.serves(proc, local.port());
                self.push_activity(|| Activity::Listen { service: service.clone(), port: local.port() });
                self.listeners.put((local.ip(), local.port()), service);
                if !local.ip().is_unspecified() {
                    self.local_ips.put(local.ip(), ());
                }
            }
            Observation::Connect { proc, sock_id, local, remote, ok, latency_ns } => {
                let tuple = (canon_sa(*local), canon_sa(*remote));
                self.local_ips.put(tuple.0.ip(), ());
                let client = self.service_of(proc);
                if !ok {
                    // no accept will come
                    let server_local = self.is_local_server(tuple.1);
                    let server = self.server_at(tuple.1);
                    self.push_activity(|| Activity::Connection {
                        client: client.clone(),
                        server: server.clone(),
                        client_local: true,
                        server_local,
                        ok: false,
                    });
                    self.count_connection((client, server), false, Some(*latency_ns));
                    return;
                }
                match self.pending.remove(&tuple) {
                    Some(PendingEntry {
                        what: Pending::Accept { server, sock_id: server_sock, close },
                        requests,
                        ..
                    }) => {
                        // a server end that already closed said nothing the client end will not say
                        let _ = close;
                        let ends = Joined { client_sock: *sock_id, server_sock, client_close: None };
                        self.join((client, server), *latency_ns, &requests, ends);
                    }
                    _ => {
                        self.sock_tuple.put(*sock_id, tuple);
                        let what = Pending::Connect { client, sock_id: *sock_id, latency_ns: *latency_ns, close: None };
                        self.push_pending(tuple, what, now);
                    }
                }
            }
            Observation::Accept { proc, sock_id, local, remote } => {
                let (local, remote) = (canon_sa(*local), canon_sa(*remote));
                self.local_ips.put(local.ip(), ());
                let server = self.serves(proc, local.port());
                let tuple = (remote, local);
                match self.pending.remove(&tuple) {
                    Some(PendingEntry {
                        what: Pending::Connect { client, sock_id: client_sock, latency_ns, close },
                        requests,
                        ..
                    }) => {
                        let ends = Joined { client_sock, server_sock: *sock_id, client_close: close };
                        self.join((client, server), latency_ns, &requests, ends);
                    }
                    _ => {
                        self.sock_tuple.put(*sock_id, tuple);
                        self.push_pending(tuple, Pending::Accept { server, sock_id: *sock_id, close: None }, now);
                    }
                }
            }
            Observation::Close { sock_id, outbound, stats } => {
                if let Some(tuple) = self.sock_tuple.pop(sock_id)
                    && let Some(p) = self.pending.get_mut(&tuple)
                {
                    match &mut p.what {
                        Pending::Connect { sock_id: s, close, .. } if *outbound && s == sock_id => {
                            *close = Some(*stats);
                            return;
                        }
                        Pending::Accept { sock_id: s, close, .. } if !*outbound && s == sock_id => {
                            *close = Some(*stats);
                            return;
                        }
                        _ => {}
                    }
                }
                if let Some(r) = self.socks.pop(sock_id)
                    && r.client_side == *outbound
                    && (r.client_side || !r.joined)
                {
                    self.apply_close(&r.edge, r.client_side, stats);
                }
            }
            Observation::Request { sock_id, client_side, protocol, failed, latency_ns } => {
                let obs = RequestObs {
                    client_side: *client_side,
                    protocol: *protocol,
                    failed: *failed,
                    latency_ns: *latency_ns,
                };
                if let Some(tuple) = self.sock_tuple.peek(sock_id).copied()
                    && let Some(p) = self.pending.get_mut(&tuple)
                {
                    if p.requests.len() < PENDING_REQUESTS_MAX {
                        p.requests.push(obs);
                    }
                    return;
                }
                match self.socks.get(sock_id).cloned() {
                    Some(r) if r.client_side == *client_side => {
                        if !r.joined || !r.client_side {
                            self.count_request(&r.edge, &obs);
                        }
                    }
                    _ => self.stats.requests_unattributed += 1,
                }
            }
            Observation::Exchange { proc, server, protocol, failed, latency_ns } => {
                let client = self.service_of(proc);
                let server_local = self.is_local_server(canon_sa(*server));
                let server = self.server_at(canon_sa(*server));
                self.push_activity(|| Activity::Connection {
                    client: client.clone(),
                    server: server.clone(),
                    client_local: true,
                    server_local,
                    ok: !*failed,
                });
                let obs =
                    RequestObs { client_side: true, protocol: *protocol, failed: *failed, latency_ns: *latency_ns };
                self.count_request(&(client, server), &obs);
            }
            Observation::DnsAnswer { name, addr } => {
                self.names.put(canonical(*addr), Arc::from(name.trim_end_matches('.')));
            }
        }
    }

    /// The graph as it is now.
    pub fn snapshot(&self) -> Snapshot {
        let mut nodes: BTreeMap<Arc<str>, NodeSnapshot> = BTreeMap::new();
        let mut edges = Vec::with_capacity(self.edges.len());
        for ((client, server), e) in self.edges.iter() {
            edges.push(EdgeSnapshot {
                client: client.to_string(),
                server: server.to_string(),
                connections: e.connections,
                failed: e.failed,
                bytes_sent: e.bytes_sent,
                bytes_received: e.bytes_received,
                retransmits: e.retransmits,
                connect_p50_seconds: e.connect_latency.quantile(0.5),
                connect_p99_seconds: e.connect_latency.quantile(0.99),
                requests: e.requests.values().map(|r| r.requests).sum(),
                requests_failed: e.requests.values().map(|r| r.failed).sum(),
                request_p50_seconds: merged_latency(e).quantile(0.5),
                request_p99_seconds: merged_latency(e).quantile(0.99),
                protocols: e.requests.keys().map(|p| p.to_string()).collect(),
                stats: e.clone(),
            });
            let out = nodes.entry(client.clone()).or_insert_with(|| NodeSnapshot::named(client));
            out.connections_out += e.connections;
            out.failed_out += e.failed;
            let inn = nodes.entry(server.clone()).or_insert_with(|| NodeSnapshot::named(server));
            inn.connections_in += e.connections;
            inn.failed_in += e.failed;
        }
        for ((ip, port), service) in self.listeners.iter() {
            let n = nodes.entry(service.clone()).or_insert_with(|| NodeSnapshot::named(service));
            n.listening.push(addr_port(*ip, *port));
        }
        edges.sort_by(|a, b| (&a.client, &a.server).cmp(&(&b.client, &b.server)));
        let mut nodes: Vec<NodeSnapshot> = nodes.into_values().collect();
        for n in &mut nodes {
            n.listening.sort();
            n.listening.dedup();
        }
        Snapshot { nodes, edges, stats: self.stats() }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeSnapshot {
    pub name: String,
    pub connections_in: u64,
    pub failed_in: u64,
    pub connections_out: u64,
    pub failed_out: u64,
    pub listening: Vec<String>,
}

impl NodeSnapshot {
    fn named(name: &str) -> Self {
        NodeSnapshot {
            name: name.to_string(),
            connections_in: 0,
            failed_in: 0,
            connections_out: 0,
            failed_out: 0,
            listening: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EdgeSnapshot {
    pub client: String,
    pub server: String,
    pub connections: u64,
    pub failed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retransmits: u64,
    pub connect_p50_seconds: Option<f64>,
    pub connect_p99_seconds: Option<f64>,
    pub requests: u64,
    pub requests_failed: u64,
    pub request_p50_seconds: Option<f64>,
    pub request_p99_seconds: Option<f64>,
    pub protocols: Vec<String>,
    #[serde(skip)]
    pub stats: EdgeStats,
}

/// All protocols' request latencies of an edge in one histogram.
pub fn merged_latency(e: &EdgeStats) -> Histogram {
    let mut h = Histogram::default();
    for r in e.requests.values() {
        for (a, b) in h.buckets.iter_mut().zip(r.latency.buckets) {
            *a += b;
        }
        h.count += r.latency.count;
        h.sum_seconds += r.latency.sum_seconds;
    }
    h
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub nodes: Vec<NodeSnapshot>,
    pub edges: Vec<EdgeSnapshot>,
    pub stats: GraphStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, exe: &str) -> Proc<'_> {
        Proc { pid, exe, container_id: None, systemd_unit: None, netns: None }
    }
    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }
    fn edge<'a>(s: &'a Snapshot, c: &str, srv: &str) -> Option<&'a EdgeSnapshot> {
        s.edges.iter().find(|e| e.client == c && e.server == srv)
    }

    #[test]
    fn both_ends_on_this_host_join_into_one_named_edge() {
        let mut g = Graph::new(&TopologyConfig::default());
        let t0 = Instant::now();
        let server = p(10, "/usr/bin/python3");
        g.observe(&Observation::Listen { proc: server, local: sa("0.0.0.0:8080") }, t0);
        for i in 0..3u16 {
            let c = sa(&format!("10.0.0.1:{}", 40000 + i));
            let s = sa("10.0.0.2:8080");
            g.observe(
                &Observation::Connect {
                    proc: p(20, "/usr/bin/curl"),
                    sock_id: 100 + i as u64,
                    local: c,
                    remote: s,
                    ok: true,
                    latency_ns: 2_000_000,
                },
                t0,
            );
            g.observe(&Observation::Accept { proc: server, sock_id: 200 + i as u64, local: s, remote: c }, t0);
            let stats = CloseStats {
                bytes_sent: 100,
                bytes_received: 1000,
                duration_ns: 1_000_000,
                srtt_us: 50,
                retransmits: 1,
            };
            g.observe(&Observation::Close { sock_id: 100 + i as u64, outbound: true, stats }, t0);
            g.observe(
                &Observation::Close {
                    sock_id: 200 + i as u64,
                    outbound: false,
                    stats: CloseStats { bytes_sent: 1000, bytes_received: 100, ..stats },
                },
                t0,
            );
        }
        g.tick(t0 + Duration::from_secs(10));
        let s = g.snapshot();
        let e = edge(&s, "curl", "python3:8080").unwrap_or_else(|| panic!("{s:#?}"));
        assert_eq!((e.connections, e.failed, e.bytes_sent, e.bytes_received, e.retransmits), (3, 0, 300, 3000, 3));
        assert_eq!(e.connect_p50_seconds, Some(0.0025));
        assert_eq!(s.edges.len(), 1, "{s:#?}");
        assert_eq!(s.stats.joined, 3);
        let node = s.nodes.iter().find(|n| n.name == "python3:8080").unwrap();
        assert_eq!(node.listening, vec!["0.0.0.0:8080"]);
    }

    #[test]
    fn accept_before_connect_still_joins() {
        let mut g = Graph::new(&TopologyConfig::default());
        let t0 = Instant::now();
        let (c, s) = (sa("127.0.0.1:5000"), sa("127.0.0.1:6379"));
        g.observe(&Observation::Accept { proc: p(1, "/usr/bin/redis-server"), sock_id: 1, local: s, remote: c }, t0);
        g.observe(
            &Observation::Connect {
                proc: p(2, "/usr/bin/redis-cli"),
                sock_id: 2,
                local: c,
                remote: s,
                ok: true,
                latency_ns: 1000,
            },
            t0,
        );
        g.tick(t0 + Duration::from_secs(10));
        let snap = g.snapshot();
        assert_eq!(edge(&snap, "redis-cli", "redis-server:6379").map(|e| e.connections), Some(1), "{snap:#?}");
        assert_eq!(snap.edges.len(), 1);
    }

    #[test]
    fn remote_ends_are_addresses_or_dns_names_and_failures_count() {
        let mut g = Graph::new(&TopologyConfig::default());
        let t0 = Instant::now();
        let curl = p(3, "/usr/bin/curl");
        g.observe(&Observation::DnsAnswer { name: "api.example.com.", addr: "203.0.113.7".parse().unwrap() }, t0);
        g.observe(
            &Observation::Connect {
                proc: curl,
                sock_id: 1,
                local: sa("10.1.1.1:4000"),
                remote: sa("203.0.113.7:443"),
                ok: true,
                latency_ns: 30_000_000,
            },
            t0,
        );
        g.observe(
            &Observation::Connect {
                proc: curl,
                sock_id: 2,
                local: sa("10.1.1.1:4001"),
                remote: sa("198.51.100.9:443"),
                ok: false,
                latency_ns: 0,
            },
            t0,
        );
        // a proxy: accepts on 8080, then connects out; one node either way
        g.observe(&Observation::Listen { proc: p(4, "/usr/sbin/nginx"), local: sa("0.0.0.0:8080") }, t0);
        g.observe(
            &Observation::Connect {
                proc: p(4, "/usr/sbin/nginx"),
                sock_id: 3,
                local: sa("10.1.1.1:4002"),
                remote: sa("10.9.9.9:9000"),
                ok: true,
                latency_ns: 1,
            },
            t0,
        );
        g.tick(t0 + Duration::from_secs(10));
        let s = g.snapshot();
        assert_eq!(edge(&s, "curl", "api.example.com:443").map(|e| e.connections), Some(1), "{s:#?}");
        let failed = edge(&s, "curl", "198.51.100.9:443").unwrap();
        assert_eq!((failed.connections, failed.failed), (1, 1));
        assert!(edge(&s, "nginx:8080", "10.9.9.9:9000").is_some(), "{s:#?}");
        // an inbound connection from a remote client
        g.observe(
            &Observation::Accept {
                proc: p(4, "/usr/sbin/nginx"),
                sock_id: 9,
                local: sa("10.1.1.1:8080"),
                remote: sa("192.0.2.5:51000"),
            },
            t0,
        );
        g.tick(t0 + Duration::from_secs(20));
        assert_eq!(edge(&g.snapshot(), "192.0.2.5", "nginx:8080").map(|e| e.connections), Some(1));
    }

    #[test]
    fn edges_are_bounded_and_evictions_counted() {
        let cfg = TopologyConfig { max_edges: 100, ..TopologyConfig::default() };
        let mut g = Graph::new(&cfg);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let remote =
                SocketAddr::new(IpAddr::from((0xc000_0200u32 + (i % 250)).to_be_bytes()), 1000 + (i / 250) as u16);
            g.observe(
                &Observation::Connect {
                    proc: p(5, "/bin/x"),
                    sock_id: i as u64,
                    local: sa("10.0.0.1:1"),
                    remote,
                    ok: false,
                    latency_ns: 0,
                },
                t0,
            );
        }
        let s = g.stats();
        assert_eq!(s.edges, 100);
        assert_eq!(s.edges_evicted, 900);
        let mut text = String::new();
        crate::render(&g.snapshot(), &mut text);
        assert_eq!(text.lines().filter(|l| l.starts_with("sensor_topology_connections_total{")).count(), 100);
        assert!(text.contains("sensor_topology_edges_evicted_total 900"));
    }

    #[test]
    fn requests_count_once_from_the_server_end_even_before_the_join() {
        let mut g = Graph::new(&TopologyConfig::default());
        let t0 = Instant::now();
        let (c, s) = (sa("10.0.0.1:41000"), sa("10.0.0.2:80"));
        let req = |sock_id, client_side, failed, ms: u64| Observation::Request {
            sock_id,
            client_side,
            protocol: Protocol::Http,
            failed,
            latency_ns: ms * 1_000_000,
        };
        g.observe(
            &Observation::Connect {
                proc: p(1, "/usr/bin/curl"),
                sock_id: 1,
                local: c,
                remote: s,
                ok: true,
                latency_ns: 1,
            },
            t0,
        );
        // the client's view arrives while the connect still waits for its accept
        g.observe(&req(1, true, false, 12), t0);
        g.observe(&Observation::Accept { proc: p(2, "/usr/sbin/nginx"), sock_id: 2, local: s, remote: c }, t0);
        g.observe(&req(1, true, false, 12), t0);
        g.observe(&req(2, false, false, 10), t0);
        g.observe(&req(2, false, true, 10), t0);
        let snap = g.snapshot();
        let e = edge(&snap, "curl", "nginx:80").unwrap();
        assert_eq!((e.requests, e.requests_failed), (2, 1), "{snap:#?}");
        assert_eq!(e.request_p50_seconds, Some(0.01));
        let mut text = String::new();
        crate::render(&snap, &mut text);
        assert!(text.contains("traces_service_graph_request_total{client=\"curl\",server=\"nginx:80\"} 2\n"), "{text}");
        assert!(text.contains("traces_service_graph_request_failed_total{client=\"curl\",server=\"nginx:80\"} 1\n"));
        assert!(
            text.contains("traces_service_graph_request_server_seconds_count{client=\"curl\",server=\"nginx:80\"} 2\n")
        );
        assert!(
            text.contains("sensor_topology_requests_total{client=\"curl\",server=\"nginx:80\",protocol=\"http\"} 2\n")
        );
        // a remote server: the client's view is all there is
        g.observe(
            &Observation::Connect {
                proc: p(1, "/usr/bin/curl"),
                sock_id: 5,
                local: sa("10.0.0.1:41001"),
                remote: sa("203.0.113.9:443"),
                ok: true,
                latency_ns: 1,
            },
            t0,
        );
        g.observe(&req(5, true, false, 30), t0);
        g.tick(t0 + Duration::from_secs(10));
        g.observe(&req(5, true, false, 30), t0);
        assert_eq!(edge(&g.snapshot(), "curl", "203.0.113.9:443").map(|e| e.requests), Some(2));
        // a request on a connection never seen
        g.observe(&req(99, true, false, 1), t0);
        assert_eq!(g.stats().requests_unattributed, 1);
    }
}
