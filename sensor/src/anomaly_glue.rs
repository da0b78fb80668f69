//! Feeds the anomaly detector (crate `anomaly`) on the pipeline thread:
//! edge activity from the topology graph (connections, requests, listens,
//! already joined and named), and exec events (the service is the parent
//! process's). Anomalies become synthetic events of type `anomaly`, so they
//! reach the event stream, the audit trail and the rules like any event.
//!
//! Baselines are loaded at start, written every `persist_interval_secs` and
//! at shutdown by the store's own thread; resets and accepts made with
//! `sensor baseline` are picked up on each persist. A corrupt baseline
//! database is moved aside and detection starts fresh (logged); a database
//! that cannot be opened at all leaves detection running in memory only.

use crate::event::Event;
use crate::topo::Topology;
use anomaly::store::{Msg, Store, Writer};
use anomaly::{Anomaly, AnomalyConfig, Detector, Input};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use topology::Activity;

/// Activity the graph holds between two drains (one pipeline turn).
pub const ACTIVITY_CAP: usize = 65_536;

/// The latest detector counters, for `sensor stats` and /metrics.
#[derive(Clone, Default)]
pub struct StatsSlot(Arc<Mutex<Option<Value>>>);

impl StatsSlot {
    pub fn get(&self) -> Option<Value> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `baseline.db` next to the audit trail.
pub fn default_path(audit_path: &Path) -> PathBuf {
    audit_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/var/lib/sensor"))
        .join("baseline.db")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub struct AnomalyGlue {
    detector: Detector,
    writer: Option<Writer>,
    activity: Vec<Activity>,
    found: Vec<Anomaly>,
    every: Duration,
    last_persist: Instant,
    last_publish: Instant,
    slot: StatsSlot,
}

/// The store and what it held.
type Loaded = (Store, anomaly::Global, Vec<(String, anomaly::Service)>);

/// Opens and loads the database; a corrupt one is moved aside once.
fn open_store(path: &Path, max: usize) -> Result<Loaded, String> {
    let (store, warn) = Store::open_or_fresh(path).map_err(|e| e.to_string())?;
    if let Some(w) = warn {
        tracing::error!("anomaly: {w}");
    }
    match store.load(max) {
        Ok((g, s)) => Ok((store, g, s)),
        Err(e) => {
            drop(store);
            let aside = anomaly::store::move_aside(path).map_err(|m| format!("{e}; and cannot move it aside: {m}"))?;
            tracing::error!("anomaly: {e}; moved it to {} and started with empty baselines", aside.display());
            let store = Store::open(path).map_err(|e| e.to_string())?;
            Ok((store, Default::default(), Vec::new()))
        }
    }
}

impl AnomalyGlue {
    pub fn open(cfg: &AnomalyConfig, path: &Path, slot: StatsSlot) -> AnomalyGlue {
        let mut detector = Detector::new(cfg.clone());
        let writer = match open_store(path, cfg.max_services) {
            Ok((store, global, services)) => {
                let n = services.len();
                let learned = services.iter().filter(|(_, s)| s.learned_ms.is_some()).count();
                detector.load(global, services);
                tracing::info!("anomaly: {n} service baselines loaded from {} ({learned} learned)", path.display());
                match Writer::spawn(store, cfg.max_services) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        tracing::error!("anomaly: cannot start the baseline writer: {e}; baselines are not persisted");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::error!(
                    "anomaly: baseline database {}: {e}; detection runs in memory only (baselines are lost at exit)",
                    path.display()
                );
                None
            }
        };
        AnomalyGlue {
            detector,
            writer,
            activity: Vec::new(),
            found: Vec::new(),
            every: Duration::from_secs(cfg.persist_interval_secs.max(1)),
            last_persist: Instant::now(),
            last_publish: Instant::now() - Duration::from_secs(1),
            slot,
        }
    }

    /// An exec: the parent's service ran the new executable.
    pub fn observe_event(&mut self, ev: &Event, topo: &mut Topology) {
        if ev.kind != "exec" {
            return;
        }
        let Some(service) = topo.parent_service(ev) else { return };
        let parent = ev.process.lineage.first().map(|s| &**s);
        let input = Input::Exec { service: &service, parent_exe: parent, exe: &ev.process.exe };
        self.detector.observe(&input, now_ms(), &mut self.found);
    }

    /// Feeds what the graph counted since the last call; returns anomaly events.
    pub fn drain(&mut self, topo: &mut Topology) -> Vec<Value> {
        topo.drain_activity(&mut self.activity);
        if self.activity.is_empty() && self.found.is_empty() {
            return Vec::new();
        }
        let now = now_ms();
        for a in self.activity.drain(..) {
            let input = match &a {
                Activity::Connection { client, server, client_local, server_local, .. } => {
                    Input::Connection { client, server, client_local: *client_local, server_local: *server_local }
                }
                Activity::Request { client, server, protocol, failed, latency_ns } => Input::Request {
                    client,
                    server,
                    protocol: protocol.name(),
                    failed: *failed,
                    latency_ns: *latency_ns,
                },
                Activity::Listen { service, port } => Input::Listen { service, port: *port },
            };
            self.detector.observe(&input, now, &mut self.found);
        }
        let mut out = Vec::with_capacity(self.found.len());
        for a in self.found.drain(..) {
            if let Some(w) = &self.writer {
                w.send(Msg::Anomaly(Box::new(a.clone()), now));
            }
            out.push(serde_json::json!({"type": "anomaly", "anomaly": a}));
        }
        out
    }

    /// Every pipeline turn: feed, persist when due, apply CLI overrides,
    /// publish counters.
    pub fn tick(&mut self, topo: &mut Topology) -> Vec<Value> {
        let out = self.drain(topo);
        if let Some(w) = &self.writer {
            for o in w.overrides() {
                tracing::info!("anomaly: applying {o:?} from the baseline database");
                self.detector.apply(&o);
            }
            if self.last_persist.elapsed() >= self.every {
                self.last_persist = Instant::now();
                let rows = self.detector.take_dirty();
                self.detector.stats_mut().persisted_services += rows.len() as u64;
                w.send(Msg::Persist { rows, global: self.detector.global().clone(), ack: None });
            }
        }
        if self.last_publish.elapsed() >= Duration::from_secs(1) {
            self.last_publish = Instant::now();
            let mut v = serde_json::to_value(self.detector.stats()).unwrap_or_default();
            if let Some(w) = &self.writer {
                v["persist_errors"] = w.errors.load(Ordering::Relaxed).into();
                v["writer_dropped"] = w.dropped.load(Ordering::Relaxed).into();
            }
            v["activity_dropped"] = topo.activity_dropped().into();
            *self.slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        }
        out
    }

    /// At shutdown: the final persist, waited for.
    pub fn finish(mut self) {
        let rows = self.detector.take_dirty();
        let n = rows.len();
        if let Some(w) = self.writer.take() {
            if w.finish(rows, self.detector.global().clone(), Duration::from_secs(10)) {
                tracing::info!("anomaly: {n} changed baselines written at shutdown");
            } else {
                tracing::error!("anomaly: the final baseline write did not complete");
            }
        }
    }
}
