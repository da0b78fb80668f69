//! The consumer side of the event queue, on its own thread: every enriched
//! event is written out, recorded in the audit trail and evaluated by the
//! policy engine; alerts go to the same outputs and to the alert sinks.
//!
//! Why one thread: the stages are ordered per event (an alert is recorded
//! after the event that caused it) and the policy engine keeps per-thread
//! caches. Slow stages back up into the bounded queue, where the reader
//! drops and counts, so the kernel reader never stalls.
//!
//! Synthetic events (policy_reload_failed, audit_degraded, sink_degraded)
//! arrive on a second, small channel and take the same path.

use crate::event::{Event, format_ts};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct PipelineStats {
    pub processed: AtomicU64,
    pub synthetic: AtomicU64,
    pub output_errors: AtomicU64,
    pub alerts: AtomicU64,
    pub policy_ns: AtomicU64,
}

/// Where alerts go besides the event stream and the audit trail.
pub trait AlertSink: Send {
    fn submit(&mut self, alert: &Value);
    /// Called once at shutdown.
    fn finish(&mut self) {}
}

/// Writes events and alerts as JSON lines (`--events-out`).
pub struct JsonLines {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    buf: Vec<u8>,
    failed: bool,
}

impl JsonLines {
    /// `target` is a path or "-" for stdout. A file is appended to.
    pub fn open(target: &str) -> std::io::Result<Self> {
        let w: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(JsonLines {
            out: std::io::BufWriter::with_capacity(256 * 1024, w),
            buf: Vec::with_capacity(1024),
            failed: false,
        })
    }

    fn write(&mut self, v: &impl serde::Serialize, stats: &PipelineStats) {
        self.buf.clear();
        if serde_json::to_writer(&mut self.buf, v).is_err() {
            self.buf.clear();
            stats.output_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.buf.push(b'\n');
        if let Err(e) = self.out.write_all(&self.buf) {
            stats.output_errors.fetch_add(1, Ordering::Relaxed);
            if !self.failed {
                // once per failure streak, not per event
                tracing::error!("events-out: write failed: {e}");
                self.failed = true;
            }
        } else {
            self.failed = false;
        }
    }

    /// The JSON of the last item written (without its newline), if it serialized.
    fn last_json(&self) -> Option<&str> {
        let line = self.buf.strip_suffix(b"\n")?;
        std::str::from_utf8(line).ok()
    }

    fn flush(&mut self, stats: &PipelineStats) {
        if self.out.flush().is_err() {
            stats.output_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Processor {
    pub events_out: Option<JsonLines>,
    pub policy: Option<policy::PolicyEngine>,
    pub audit: Option<Arc<audit::AuditStore>>,
    pub alerts: Vec<Box<dyn AlertSink>>,
    pub host: Arc<str>,
    pub stats: Arc<PipelineStats>,
    pub topology: Option<crate::topo::Topology>,
    /// Matches L7 payloads into requests; `l7_emit` says which become events.
    pub l7: Option<(crate::l7::Tracker, String)>,
    /// Learns baselines from the topology's edges and exec events; needs `topology`.
    pub anomaly: Option<crate::anomaly_glue::AnomalyGlue>,
    last_error_log: Option<Instant>,
}

impl Processor {
    pub fn new(host: &str, stats: Arc<PipelineStats>) -> Self {
        Processor {
            events_out: None,
            policy: None,
            audit: None,
            alerts: Vec::new(),
            host: Arc::from(host),
            stats,
            topology: None,
            l7: None,
            anomaly: None,
            last_error_log: None,
        }
    }

    pub fn handle_event(&mut self, ev: &Event) {
        if let Some(payload) = crate::l7::payload(ev) {
            // raw payloads are not events: their requests are
            self.handle_l7(ev, payload);
            self.anomaly_turn(None, false);
            self.stats.processed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(t) = &mut self.topology {
            t.observe(ev);
        }
        if let Some(out) = &mut self.events_out {
            out.write(ev, &self.stats);
        }
        if let Some(audit) = &self.audit {
            // Columns from the typed event; the JSON only if the store keeps
            // it, and then the bytes --events-out just wrote when there are any.
            let written = self.events_out.as_ref().and_then(JsonLines::last_json);
            audit.record_event_with(&ev.audit_columns(), || match written {
                Some(json) => json.to_owned(),
                None => serde_json::to_string(ev).unwrap_or_else(|_| "null".into()),
            });
        }
        if self.policy.is_some() {
            match serde_json::to_value(ev) {
                Ok(v) => self.evaluate(&v),
                Err(_) => {
                    self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.anomaly_turn(Some(ev), false);
        self.stats.processed.fetch_add(1, Ordering::Relaxed);
    }

    /// Feeds the anomaly detector (after the event itself went out, so an
    /// anomaly follows its cause in the stream) and emits what it found.
    fn anomaly_turn(&mut self, ev: Option<&Event>, tick: bool) {
        let (Some(a), Some(t)) = (&mut self.anomaly, &mut self.topology) else { return };
        if let Some(ev) = ev {
            a.observe_event(ev, t);
        }
        let found = if tick { a.tick(t) } else { a.drain(t) };
        for v in found {
            self.handle_synthetic(v);
        }
    }

    fn handle_l7(&mut self, ev: &Event, payload: &crate::decode::L7) {
        let Some((tracker, emit)) = &mut self.l7 else { return };
        let done = tracker.observe(ev.hdr.pid, ev.hdr.ts_boot_ns, payload);
        let emit = emit.clone();
        for c in done {
            if let Some(t) = &mut self.topology {
                t.request(&c);
            }
            if emit == "all" || (emit == "errors" && c.failed) {
                let v = crate::l7::to_event(ev, &c);
                if let Some(out) = &mut self.events_out {
                    out.write(&v, &self.stats);
                }
                self.record_and_evaluate(&v);
            }
        }
    }

    /// A synthetic event (already a JSON object); ts and host are filled in.
    pub fn handle_synthetic(&mut self, mut v: Value) {
        if let Some(obj) = v.as_object_mut() {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            obj.entry("ts").or_insert_with(|| format_ts(now.as_nanos() as u64).into());
            obj.entry("host").or_insert_with(|| Value::from(&*self.host));
        }
        if let Some(out) = &mut self.events_out {
            out.write(&v, &self.stats);
        }
        self.record_and_evaluate(&v);
        self.stats.synthetic.fetch_add(1, Ordering::Relaxed);
    }

    fn record_and_evaluate(&mut self, v: &Value) {
        // the store counts its own drops (channel full, degraded); never blocks
        if let Some(audit) = &self.audit {
            audit.record_event(v);
        }
        self.evaluate(v);
    }

    /// Runs the rules over one event; its alerts go to every output.
    fn evaluate(&mut self, v: &Value) {
        let Some(engine) = &mut self.policy else { return };
        let t = Instant::now();
        let eval = engine.evaluate(v);
        self.stats.policy_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if !eval.errors.is_empty() {
            // bounded: at most one log line per 10 s; the engine counts every error per rule
            let due = self.last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
            if due {
                let e = &eval.errors[0];
                tracing::warn!("rule {} failed at run time: {}", e.rule, e.message);
                self.last_error_log = Some(Instant::now());
            }
        }
        for alert in eval.alerts {
            let Ok(mut a) = serde_json::to_value(&alert) else { continue };
            if let Some(obj) = a.as_object_mut() {
                obj.insert("type".into(), "alert".into());
                obj.insert("ts".into(), v.get("ts").cloned().unwrap_or(Value::Null));
                obj.insert("host".into(), Value::from(&*self.host));
            }
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            if let Some(out) = &mut self.events_out {
                out.write(&a, &self.stats);
            }
            if let Some(audit) = &self.audit {
                audit.record_alert(&a);
            }
            for sink in &mut self.alerts {
                sink.submit(&a);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = &mut self.events_out {
            out.flush(&self.stats);
        }
    }

    fn tick(&mut self) {
        self.anomaly_turn(None, true);
        let Some(t) = &mut self.topology else { return };
        if let Some(snapshot) = t.tick() {
            self.record_snapshot(snapshot);
        }
    }

    /// Topology snapshots go to the audit trail only (`sensor topology
    /// --db`), not to the event stream or the rules.
    fn record_snapshot(&mut self, mut v: Value) {
        if let (Some(audit), Some(obj)) = (&self.audit, v.as_object_mut()) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            obj.insert("ts".into(), format_ts(now.as_nanos() as u64).into());
            obj.insert("host".into(), Value::from(&*self.host));
            audit.record_event(&v);
        }
    }

    fn finish(mut self) {
        self.anomaly_turn(None, false);
        if let Some(a) = self.anomaly.take() {
            a.finish();
        }
        self.flush();
        if let Some(t) = &mut self.topology {
            let snapshot = t.publish_now();
            self.record_snapshot(snapshot);
        }
        for mut sink in self.alerts.drain(..) {
            sink.finish();
        }
        // the owner (run.rs) shuts the store down once this reference is gone
        self.audit.take();
    }
}

pub fn spawn(
    events: Receiver<Event>,
    synthetic: Receiver<Value>,
    mut proc: Processor,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("pipeline".into()).spawn(move || {
        let mut last_flush = Instant::now();
        loop {
            while let Ok(v) = synthetic.try_recv() {
                proc.handle_synthetic(v);
            }
            proc.tick();
            match events.recv_timeout(Duration::from_millis(50)) {
                Ok(ev) => {
                    proc.handle_event(&ev);
                    if last_flush.elapsed() >= Duration::from_millis(100) {
                        proc.flush();
                        last_flush = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    proc.flush();
                    last_flush = Instant::now();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // the reader is gone: take what is left of the synthetic events too
        while let Ok(v) = synthetic.try_recv() {
            proc.handle_synthetic(v);
        }
        proc.finish();
    })
}
