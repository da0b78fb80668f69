//! Anomaly detection: learn what is normal per service, then flag what is
//! not. Pure logic (no eBPF): the sensor feeds [`Input`]s (connections and
//! requests on topology edges, listens, execs) with the service names the
//! topology gives, and gets [`Anomaly`] records back.
//!
//! Per service the baseline holds: outbound peers (services, or remote
//! `ip:port` / `name:port`) with a latency and an error model per edge
//! (see [`model`]), inbound client services, listening ports, process
//! lineage (parent exe -> child exe) and the executables it runs.
//!
//! A service learns for `learning_secs` of *activity* (the time between its
//! observations, gaps longer than `idle_gap_secs` not counted, so downtime
//! and restarts do not count) and at least `min_observations`; nothing about
//! it is flagged before. A service first seen after the detector as a whole
//! has learned is itself an anomaly (`new_service`), and then learns.
//!
//! A flagged item (a new edge, port, lineage, executable) is remembered as
//! flagged: it is not reported again unless it recurs after `renotify_secs`,
//! until `sensor baseline accept ID` makes it normal.
//!
//! Memory is bounded: an LRU of `max_services`, and per service caps on
//! each set (the least recently seen entry is evicted); every eviction is
//! counted in [`Stats`].

pub mod cli;
pub mod model;
pub mod store;

use lru::LruCache;
use model::{ErrorModel, LatencyModel, ModelParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// `[anomaly]` in the sensor's config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    pub enabled: bool,
    /// The baseline database (default: `baseline.db` next to the audit trail).
    pub path: Option<PathBuf>,
    /// Activity a service needs before anything about it is flagged.
    pub learning_secs: u64,
    /// ... and observations (connections, requests, listens, execs).
    pub min_observations: u64,
    /// A gap between two observations longer than this is not activity.
    pub idle_gap_secs: u64,
    /// How often baselines are written (they are also written at shutdown).
    pub persist_interval_secs: u64,
    /// A flagged, not accepted item seen again after this long is reported again.
    pub renotify_secs: u64,
    /// Report services first seen after the learning period.
    pub flag_new_services: bool,
    pub max_services: usize,
    /// Per service and direction.
    pub max_peers: usize,
    pub max_ports: usize,
    pub max_lineages: usize,
    pub max_executables: usize,
    /// A latency shift is at least this many standard deviations (of ln latency) ...
    pub latency_z: f64,
    /// ... and at least this factor, up or down.
    pub latency_min_ratio: f64,
    /// Requests an edge's models need before they judge.
    pub min_requests: u64,
    /// An error spike is at least this much above the usual failure fraction.
    pub error_min_increase: f64,
    /// Learning rate after the learning period (per sample).
    pub drift_alpha: f64,
    /// A latency shift lasting this long becomes the new normal.
    pub absorb_secs: u64,
    /// Anomalies emitted per minute at most (the rest are counted as dropped).
    pub max_per_minute: u32,
    /// After the sensor starts, new peers, ports, lineages, executables and
    /// services are learned without being reported for this long: a
    /// connection that straddles the moment the probes attach is seen from
    /// one end only and would look like a new peer.
    pub startup_grace_secs: u64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            enabled: true,
            path: None,
            learning_secs: 1800,
            min_observations: 100,
            idle_gap_secs: 300,
            persist_interval_secs: 60,
            renotify_secs: 86_400,
            flag_new_services: true,
            max_services: 4096,
            max_peers: 256,
            max_ports: 64,
            max_lineages: 256,
            max_executables: 256,
            latency_z: 4.0,
            latency_min_ratio: 3.0,
            min_requests: 50,
            error_min_increase: 0.2,
            drift_alpha: 0.002,
            absorb_secs: 1800,
            max_per_minute: 120,
            startup_grace_secs: 10,
        }
    }
}

impl AnomalyConfig {
    /// Every problem at once.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        let caps = [
            ("max_services", self.max_services),
            ("max_peers", self.max_peers),
            ("max_ports", self.max_ports),
            ("max_lineages", self.max_lineages),
            ("max_executables", self.max_executables),
        ];
        for (k, v) in caps {
            if v == 0 || v > 1_000_000 {
                errs.push(format!("{k} must be between 1 and 1000000, not {v}"));
            }
        }
        if !(self.latency_z > 0.0 && self.latency_z.is_finite()) {
            errs.push(format!("latency_z must be positive, not {}", self.latency_z));
        }
        if !(self.latency_min_ratio >= 1.0 && self.latency_min_ratio.is_finite()) {
            errs.push(format!("latency_min_ratio must be at least 1, not {}", self.latency_min_ratio));
        }
        if !(self.drift_alpha > 0.0 && self.drift_alpha < 1.0) {
            errs.push(format!("drift_alpha must be in (0, 1), not {}", self.drift_alpha));
        }
        if !(self.error_min_increase > 0.0 && self.error_min_increase <= 1.0) {
            errs.push(format!("error_min_increase must be in (0, 1], not {}", self.error_min_increase));
        }
        if self.persist_interval_secs == 0 {
            errs.push("persist_interval_secs must be at least 1".into());
        }
        if self.min_requests < model::WINDOW_MIN as u64 {
            errs.push(format!("min_requests must be at least {}", model::WINDOW_MIN));
        }
        if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
    }

    fn params(&self) -> ModelParams {
        ModelParams {
            z: self.latency_z,
            ln_min_ratio: self.latency_min_ratio.ln(),
            min_samples: self.min_requests,
            drift_alpha: self.drift_alpha,
            absorb_ms: self.absorb_secs * 1000,
            error_min_increase: self.error_min_increase,
        }
    }
}

/// What the sensor saw. Service names are the topology's.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A connection on an edge; `*_local`: that end is a service on this host
    /// (a remote end is an address or DNS name and has no baseline).
    Connection {
        client: &'a str,
        server: &'a str,
        client_local: bool,
        server_local: bool,
    },
    /// A completed L7 request on an edge.
    Request {
        client: &'a str,
        server: &'a str,
        protocol: &'a str,
        failed: bool,
        latency_ns: u64,
    },
    Listen {
        service: &'a str,
        port: u16,
    },
    /// `service` (its parent process's) ran `exe`; `parent_exe` is the parent's executable.
    Exec {
        service: &'a str,
        parent_exe: Option<&'a str>,
        exe: &'a str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    NewService,
    NewEdge,
    NewListenPort,
    LatencyShift,
    ErrorRateSpike,
    NewLineage,
    NewExecutable,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NewService => "new_service",
            Kind::NewEdge => "new_edge",
            Kind::NewListenPort => "new_listen_port",
            Kind::LatencyShift => "latency_shift",
            Kind::ErrorRateSpike => "error_rate_spike",
            Kind::NewLineage => "new_lineage",
            Kind::NewExecutable => "new_executable",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::NewService,
            Kind::NewEdge,
            Kind::NewListenPort,
            Kind::LatencyShift,
            Kind::ErrorRateSpike,
            Kind::NewLineage,
            Kind::NewExecutable,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// One anomaly: the `anomaly` object of an event of type `anomaly`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anomaly {
    /// Stable: the same kind, service and subject give the same id (so
    /// `sensor baseline accept ID` and alert dedup work across restarts).
    pub id: String,
    pub kind: Kind,
    /// The service whose baseline this departs from.
    pub service: String,
    /// What is new or changed: the peer, `parent -> child`, the port, the exe.
    pub subject: String,
    /// Edge kinds: `outbound` (the service is the client) or `inbound`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Set kinds: log10(observations of the service + 2), how long it went
    /// without this (a Laplace surprise); latency/errors: the z-score.
    pub score: f64,
    pub baseline: serde_json::Value,
    pub observed: serde_json::Value,
    pub message: String,
}

fn anomaly_id(kind: Kind, service: &str, subject: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(kind.name().as_bytes());
    h.update([0]);
    h.update(service.as_bytes());
    h.update([0]);
    h.update(subject.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// When something was seen, and whether it is flagged (not normal).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Seen {
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
    /// Last reported (ms) while not accepted; None: normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Peer {
    #[serde(flatten)]
    pub seen: Seen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorModel>,
}

trait HasSeen: Default {
    fn seen(&mut self) -> &mut Seen;
    fn last(&self) -> u64;
}
impl HasSeen for Seen {
    fn seen(&mut self) -> &mut Seen {
        self
    }
    fn last(&self) -> u64 {
        self.last_ms
    }
}
impl HasSeen for Peer {
    fn seen(&mut self) -> &mut Seen {
        &mut self.seen
    }
    fn last(&self) -> u64 {
        self.seen.last_ms
    }
}

/// One service's baseline (persisted as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Service {
    pub first_ms: u64,
    pub last_ms: u64,
    /// Activity so far (gaps over idle_gap_secs not counted).
    pub active_ms: u64,
    pub observations: u64,
    /// When the learning period ended.
    pub learned_ms: Option<u64>,
    #[serde(default)]
    pub outbound: BTreeMap<String, Peer>,
    #[serde(default)]
    pub inbound: BTreeMap<String, Peer>,
    #[serde(default)]
    pub ports: BTreeMap<u16, Seen>,
    /// `parent exe -> child exe`.
    #[serde(default)]
    pub lineage: BTreeMap<String, Seen>,
    #[serde(default)]
    pub executables: BTreeMap<String, Seen>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Known,
    /// New (or flagged and due again): report.
    Report,
}

/// Adds or refreshes `key`; a new key after learning is flagged.
fn see<K: Ord + Clone, V: HasSeen>(
    map: &mut BTreeMap<K, V>,
    key: &K,
    learned: bool,
    now: u64,
    cap: usize,
    renotify_ms: u64,
    evicted: &mut u64,
) -> Verdict {
    if let Some(v) = map.get_mut(key) {
        let s = v.seen();
        s.count += 1;
        s.last_ms = s.last_ms.max(now);
        return match s.flagged_ms {
            Some(at) if now.saturating_sub(at) >= renotify_ms => {
                s.flagged_ms = Some(now);
                Verdict::Report
            }
            _ => Verdict::Known,
        };
    }
    if map.len() >= cap {
        // O(cap) only when a new key meets a full set
        if let Some(oldest) = map.iter().min_by_key(|(_, v)| v.last()).map(|(k, _)| k.clone()) {
            map.remove(&oldest);
            *evicted += 1;
        }
    }
    let mut v = V::default();
    *v.seen() = Seen { first_ms: now, last_ms: now, count: 1, flagged_ms: learned.then_some(now) };
    map.insert(key.clone(), v);
    if learned { Verdict::Report } else { Verdict::Known }
}

/// Counters for `sensor stats` / Prometheus (`sensor_anomaly_*`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub services: usize,
    pub services_learning: usize,
    pub services_evicted: u64,
    pub peers_evicted: u64,
    pub ports_evicted: u64,
    pub lineages_evicted: u64,
    pub executables_evicted: u64,
    /// Requests on an edge no baseline holds (e.g. both ends remote or evicted).
    pub requests_unattributed: u64,
    pub anomalies: u64,
    pub anomalies_by_kind: BTreeMap<&'static str, u64>,
    /// Over `max_per_minute`.
    pub anomalies_dropped: u64,
    pub overrides_applied: u64,
    pub persist_errors: u64,
    pub persisted_services: u64,
}

/// Detector-wide learning state (persisted).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Global {
    pub first_ms: u64,
    pub last_ms: u64,
    pub active_ms: u64,
}

/// A change made outside the detector (`sensor baseline reset|accept`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// Forget one service, or everything.
    Reset { service: Option<String> },
    /// Learn an anomaly as normal.
    Accept { kind: Kind, service: String, subject: String, direction: Option<String> },
}

pub struct Detector {
    cfg: AnomalyConfig,
    params: ModelParams,
    services: LruCache<String, Service>,
    global: Global,
    dirty: HashSet<String>,
    stats: Stats,
    minute: (u64, u32),
    /// Wall time of this detector's first observation (the sensor's start).
    started_ms: Option<u64>,
}

impl Detector {
    pub fn new(cfg: AnomalyConfig) -> Detector {
        let cap = NonZeroUsize::new(cfg.max_services.max(1)).expect("non-zero");
        Detector {
            params: cfg.params(),
            services: LruCache::new(cap),
            global: Global::default(),
            dirty: HashSet::new(),
            stats: Stats::default(),
            minute: (0, 0),
            started_ms: None,
            cfg,
        }
    }

    pub fn config(&self) -> &AnomalyConfig {
        &self.cfg
    }

    /// Restores persisted state (oldest first, so the LRU order is kept).
    pub fn load(&mut self, global: Global, services: Vec<(String, Service)>) {
        self.global = global;
        for (name, s) in services {
            self.insert_service(name, s);
        }
    }

    fn insert_service(&mut self, name: String, s: Service) {
        if let Some((old, _)) = self.services.push(name.clone(), s)
            && old != name
        {
            self.stats.services_evicted += 1;
            self.dirty.remove(&old);
        }
    }

    pub fn stats(&self) -> Stats {
        let learning = self.services.iter().filter(|(_, s)| s.learned_ms.is_none()).count();
        Stats { services: self.services.len(), services_learning: learning, ..self.stats.clone() }
    }

    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    pub fn global(&self) -> &Global {
        &self.global
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.peek(name)
    }

    pub fn services(&self) -> impl Iterator<Item = (&String, &Service)> {
        self.services.iter()
    }

    /// Services changed since the last call, as (name, last_ms, JSON).
    pub fn take_dirty(&mut self) -> Vec<(String, u64, String)> {
        let names: Vec<String> = self.dirty.drain().collect();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            if let Some(s) = self.services.peek(&n)
                && let Ok(j) = serde_json::to_string(s)
            {
                out.push((n, s.last_ms, j));
            }
        }
        out
    }

    fn learning_ms(&self) -> u64 {
        self.cfg.learning_secs * 1000
    }

    fn global_learned(&self) -> bool {
        self.global.active_ms >= self.learning_ms()
    }

    /// Counts activity for the detector and `name`; creates the service.
    /// Returns a `new_service` anomaly for a service first seen after learning.
    fn touch(&mut self, name: &str, now: u64, out: &mut Vec<Anomaly>) {
        let gap_max = self.cfg.idle_gap_secs * 1000;
        let g = &mut self.global;
        if g.first_ms == 0 {
            g.first_ms = now;
        } else {
            let gap = now.saturating_sub(g.last_ms);
            if gap <= gap_max {
                g.active_ms += gap;
            }
        }
        g.last_ms = g.last_ms.max(now);
        if !self.services.contains(name) {
            let learned_globally = self.global_learned();
            self.insert_service(name.to_string(), Service { first_ms: now, last_ms: now, ..Service::default() });
            let in_grace = self.started_ms.is_some_and(|s| now < s + self.cfg.startup_grace_secs * 1000);
            if learned_globally && self.cfg.flag_new_services && !in_grace {
                let a = Anomaly {
                    id: anomaly_id(Kind::NewService, name, ""),
                    kind: Kind::NewService,
                    service: name.to_string(),
                    subject: String::new(),
                    direction: None,
                    client: None,
                    server: None,
                    score: ((self.services.len() + 2) as f64).log10(),
                    baseline: json!({"services": self.services.len() - 1,
                        "learned_for_secs": self.global.active_ms / 1000}),
                    observed: json!({"service": name}),
                    message: format!("service {name} first seen after the learning period"),
                };
                self.emit(a, out);
            }
        }
        let learning_ms = self.learning_ms();
        let min_obs = self.cfg.min_observations;
        let s = self.services.get_mut(name).expect("inserted above");
        let gap = now.saturating_sub(s.last_ms);
        if gap <= gap_max {
            s.active_ms += gap;
        }
        s.last_ms = s.last_ms.max(now);
        s.observations += 1;
        if s.learned_ms.is_none() && s.active_ms >= learning_ms && s.observations >= min_obs {
            s.learned_ms = Some(now);
        }
        if !self.dirty.contains(name) {
            self.dirty.insert(name.to_string());
        }
    }

    fn emit(&mut self, a: Anomaly, out: &mut Vec<Anomaly>) {
        let minute = self.global.last_ms / 60_000;
        if self.minute.0 != minute {
            self.minute = (minute, 0);
        }
        if self.minute.1 >= self.cfg.max_per_minute {
            self.stats.anomalies_dropped += 1;
            return;
        }
        self.minute.1 += 1;
        self.stats.anomalies += 1;
        *self.stats.anomalies_by_kind.entry(a.kind.name()).or_default() += 1;
        out.push(a);
    }

    /// Feeds one observation at wall time `now_ms`; anomalies go to `out`.
    pub fn observe(&mut self, input: &Input, now_ms: u64, out: &mut Vec<Anomaly>) {
        let now = now_ms;
        let started = *self.started_ms.get_or_insert(now);
        let in_grace = now < started + self.cfg.startup_grace_secs * 1000;
        let renotify = self.cfg.renotify_secs * 1000;
        match *input {
            Input::Connection { client, server, client_local, server_local } => {
                let mut report: Option<(&str, &str, u64, usize, Option<u64>)> = None;
                if client_local {
                    self.touch(client, now, out);
                    let cap = self.cfg.max_peers;
                    let s = self.services.get_mut(client).expect("touched");
                    let learned = s.learned_ms.is_some() && !in_grace;
                    let v = see(
                        &mut s.outbound,
                        &server.to_string(),
                        learned,
                        now,
                        cap,
                        renotify,
                        &mut self.stats.peers_evicted,
                    );
                    if v == Verdict::Report {
                        report = Some(("outbound", client, s.observations, s.outbound.len() - 1, s.learned_ms));
                    }
                }
                if server_local {
                    self.touch(server, now, out);
                    let cap = self.cfg.max_peers;
                    let s = self.services.get_mut(server).expect("touched");
                    let learned = s.learned_ms.is_some() && !in_grace;
                    let v = see(
                        &mut s.inbound,
                        &client.to_string(),
                        learned,
                        now,
                        cap,
                        renotify,
                        &mut self.stats.peers_evicted,
                    );
                    if v == Verdict::Report && report.is_none() {
                        report = Some(("inbound", server, s.observations, s.inbound.len() - 1, s.learned_ms));
                    }
                }
                if let Some((direction, owner, obs, known, learned_ms)) = report {
                    let subject = if direction == "outbound" { server } else { client };
                    let a = Anomaly {
                        id: anomaly_id(Kind::NewEdge, owner, subject),
                        kind: Kind::NewEdge,
                        service: owner.to_string(),
                        subject: subject.to_string(),
                        direction: Some(direction.into()),
                        client: Some(client.into()),
                        server: Some(server.into()),
                        score: ((obs + 2) as f64).log10(),
                        baseline: json!({"known_peers": known, "observations": obs, "learned_ms": learned_ms}),
                        observed: json!({"client": client, "server": server, "server_remote": !server_local}),
                        message: format!("new {direction} edge {client} -> {server}"),
                    };
                    self.emit(a, out);
                }
            }
            Input::Request { client, server, protocol, failed, latency_ns } => {
                let p = self.params;
                let (owner, peer, direction) =
                    if self.services.peek(client).is_some_and(|s| s.outbound.contains_key(server)) {
                        (client, server, "outbound")
                    } else if self.services.peek(server).is_some_and(|s| s.inbound.contains_key(client)) {
                        (server, client, "inbound")
                    } else {
                        self.stats.requests_unattributed += 1;
                        return;
                    };
                self.touch(owner, now, out);
                let s = self.services.get_mut(owner).expect("present");
                let learning = s.learned_ms.is_none();
                let e = if direction == "outbound" { s.outbound.get_mut(peer) } else { s.inbound.get_mut(peer) };
                let Some(e) = e else { return };
                let shift = e.latency.get_or_insert_with(LatencyModel::default).observe(latency_ns, learning, now, &p);
                let spike = e.errors.get_or_insert_with(ErrorModel::default).observe(failed, learning, &p);
                if let Some(sh) = shift {
                    let dir = if sh.ratio > 1.0 { "slower" } else { "faster" };
                    let a = Anomaly {
                        id: anomaly_id(Kind::LatencyShift, owner, peer),
                        kind: Kind::LatencyShift,
                        service: owner.to_string(),
                        subject: peer.to_string(),
                        direction: Some(direction.into()),
                        client: Some(client.into()),
                        server: Some(server.into()),
                        score: sh.z,
                        baseline: json!({"typical_ms": round3(sh.baseline_ms), "ln_sd": round3(sh.baseline_sd), "samples": sh.samples}),
                        observed: json!({"median_ms": round3(sh.observed_ms), "ratio": round3(sh.ratio),
                            "window": model::WINDOW, "protocol": protocol}),
                        message: format!(
                            "{client} -> {server}: {protocol} requests {:.1}x {dir} (median {:.1} ms, usually {:.1} ms)",
                            if sh.ratio > 1.0 { sh.ratio } else { 1.0 / sh.ratio },
                            sh.observed_ms,
                            sh.baseline_ms
                        ),
                    };
                    self.emit(a, out);
                }
                if let Some(sp) = spike {
                    let a = Anomaly {
                        id: anomaly_id(Kind::ErrorRateSpike, owner, peer),
                        kind: Kind::ErrorRateSpike,
                        service: owner.to_string(),
                        subject: peer.to_string(),
                        direction: Some(direction.into()),
                        client: Some(client.into()),
                        server: Some(server.into()),
                        score: sp.z,
                        baseline: json!({"failure_rate": round3(sp.baseline_rate)}),
                        observed: json!({"failure_rate": round3(sp.observed_rate), "failures": sp.failures,
                            "window": sp.window, "protocol": protocol}),
                        message: format!(
                            "{client} -> {server}: {} of the last {} {protocol} requests failed (usually {:.1}%)",
                            sp.failures,
                            sp.window,
                            sp.baseline_rate * 100.0
                        ),
                    };
                    self.emit(a, out);
                }
            }
            Input::Listen { service, port } => {
                self.touch(service, now, out);
                let cap = self.cfg.max_ports;
                let s = self.services.get_mut(service).expect("touched");
                let learned = s.learned_ms.is_some() && !in_grace;
                if see(&mut s.ports, &port, learned, now, cap, renotify, &mut self.stats.ports_evicted)
                    == Verdict::Report
                {
                    let known: Vec<u16> = s.ports.keys().copied().filter(|p| *p != port).take(32).collect();
                    let obs = s.observations;
                    let a = Anomaly {
                        id: anomaly_id(Kind::NewListenPort, service, &port.to_string()),
                        kind: Kind::NewListenPort,
                        service: service.to_string(),
                        subject: port.to_string(),
                        direction: None,
                        client: None,
                        server: None,
                        score: ((obs + 2) as f64).log10(),
                        baseline: json!({"ports": known}),
                        observed: json!({"port": port}),
                        message: format!("{service} listens on a new port {port}"),
                    };
                    self.emit(a, out);
                }
            }
            Input::Exec { service, parent_exe, exe } => {
                self.touch(service, now, out);
                let (cap_e, cap_l) = (self.cfg.max_executables, self.cfg.max_lineages);
                let s = self.services.get_mut(service).expect("touched");
                let learned = s.learned_ms.is_some() && !in_grace;
                let obs = s.observations;
                let mut found = Vec::new();
                let new_exe = see(
                    &mut s.executables,
                    &exe.to_string(),
                    learned,
                    now,
                    cap_e,
                    renotify,
                    &mut self.stats.executables_evicted,
                );
                if let Some(parent) = parent_exe {
                    let pair = format!("{parent} -> {exe}");
                    if see(&mut s.lineage, &pair, learned, now, cap_l, renotify, &mut self.stats.lineages_evicted)
                        == Verdict::Report
                    {
                        let known: Vec<&String> = s.lineage.keys().filter(|k| **k != pair).take(16).collect();
                        found.push(Anomaly {
                            id: anomaly_id(Kind::NewLineage, service, &pair),
                            kind: Kind::NewLineage,
                            service: service.to_string(),
                            subject: pair.clone(),
                            direction: None,
                            client: None,
                            server: None,
                            score: ((obs + 2) as f64).log10(),
                            baseline: json!({"lineages": s.lineage.len() - 1, "examples": known}),
                            observed: json!({"parent": parent, "child": exe, "new_executable": new_exe == Verdict::Report}),
                            message: format!("{service}: {parent} started {exe}, never seen before"),
                        });
                    }
                }
                if new_exe == Verdict::Report {
                    found.push(Anomaly {
                        id: anomaly_id(Kind::NewExecutable, service, exe),
                        kind: Kind::NewExecutable,
                        service: service.to_string(),
                        subject: exe.to_string(),
                        direction: None,
                        client: None,
                        server: None,
                        score: ((obs + 2) as f64).log10(),
                        baseline: json!({"executables": s.executables.len() - 1}),
                        observed: json!({"exe": exe, "parent": parent_exe}),
                        message: format!("{service} ran {exe}, never seen before"),
                    });
                }
                for a in found {
                    self.emit(a, out);
                }
            }
        }
    }

    /// Applies a reset or an accept made by the CLI.
    pub fn apply(&mut self, o: &Override) {
        self.stats.overrides_applied += 1;
        match o {
            Override::Reset { service: None } => {
                self.services.clear();
                self.dirty.clear();
                self.global = Global::default();
            }
            Override::Reset { service: Some(s) } => {
                self.services.pop(s);
                self.dirty.remove(s);
            }
            Override::Accept { kind, service, subject, direction } => {
                accept(&mut self.services, *kind, service, subject, direction.as_deref());
                for name in [service.as_str(), subject.as_str()] {
                    if self.services.contains(name) {
                        self.dirty.insert(name.to_string());
                    }
                }
            }
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The accept logic shared by the detector and the CLI (on stored rows).
pub trait ServiceMap {
    fn get_service(&mut self, name: &str) -> Option<&mut Service>;
}

impl ServiceMap for LruCache<String, Service> {
    fn get_service(&mut self, name: &str) -> Option<&mut Service> {
        self.peek_mut(name)
    }
}

impl ServiceMap for BTreeMap<String, Service> {
    fn get_service(&mut self, name: &str) -> Option<&mut Service> {
        self.get_mut(name)
    }
}

/// Marks the anomaly's subject normal in `service` (and the other end's
/// view of a new edge); re-baselines a latency shift or error spike.
pub fn accept(m: &mut impl ServiceMap, kind: Kind, service: &str, subject: &str, direction: Option<&str>) {
    let outbound = direction != Some("inbound");
    match kind {
        Kind::NewService => {}
        Kind::NewEdge => {
            if let Some(s) = m.get_service(service) {
                let map = if outbound { &mut s.outbound } else { &mut s.inbound };
                if let Some(p) = map.get_mut(subject) {
                    p.seen.flagged_ms = None;
                }
            }
            if let Some(s) = m.get_service(subject) {
                let map = if outbound { &mut s.inbound } else { &mut s.outbound };
                if let Some(p) = map.get_mut(service) {
                    p.seen.flagged_ms = None;
                }
            }
        }
        Kind::LatencyShift | Kind::ErrorRateSpike => {
            if let Some(s) = m.get_service(service) {
                let map = if outbound { &mut s.outbound } else { &mut s.inbound };
                if let Some(p) = map.get_mut(subject) {
                    if kind == Kind::LatencyShift {
                        if let Some(l) = &mut p.latency {
                            l.accept();
                        }
                    } else if let Some(e) = &mut p.errors {
                        e.accept();
                    }
                }
            }
        }
        Kind::NewListenPort => {
            if let (Some(s), Ok(port)) = (m.get_service(service), subject.parse::<u16>())
                && let Some(p) = s.ports.get_mut(&port)
            {
                p.flagged_ms = None;
            }
        }
        Kind::NewLineage => {
            if let Some(s) = m.get_service(service)
                && let Some(p) = s.lineage.get_mut(subject)
            {
                p.flagged_ms = None;
            }
        }
        Kind::NewExecutable => {
            if let Some(s) = m.get_service(service)
                && let Some(p) = s.executables.get_mut(subject)
            {
                p.flagged_ms = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
