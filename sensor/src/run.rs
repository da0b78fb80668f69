//! `sensor run`: configuration -> kernel -> reader -> pipeline, then wait for
//! a signal and shut down in order (stop reading, drain, flush, detach).

use crate::cli::RunArgs;
use crate::config::Config;
use crate::enrich::Enricher;
use crate::enrich::proctable::ProcTable;
use crate::kernel::reader::{Reader, ReaderStats};
use crate::kernel::{Kernel, KernelOptions};
use crate::pipeline::{self, JsonLines, PipelineStats, Processor};
use sensor_bpf::wire::TYPE_NAMES;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SENSOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Loads the file (if any), applies flags, validates.
pub fn load_config(args: &RunArgs) -> Result<Config, String> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    args.apply(&mut cfg);
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

pub fn kernel_options(cfg: &Config) -> KernelOptions {
    let rb = &cfg.kernel.ring_buffer_kib;
    KernelOptions {
        self_tgid: std::process::id(),
        enabled_mask: cfg.enabled_mask(),
        wakeup_bytes: cfg.kernel.wakeup_kib * 1024,
        ring_bytes: [(rb.process * 1024) as u32, (rb.file * 1024) as u32, (rb.net * 1024) as u32],
        ignore_prefixes: cfg.kernel.file_filter.ignore_prefixes.clone(),
        watch_prefixes: cfg.kernel.file_filter.watch_prefixes.clone(),
        watch_only: cfg.kernel.file_filter.watch_only,
    }
}

/// Per-type counters as a JSON object, skipping zeros.
fn per_type(counts: impl Iterator<Item = u64>) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (i, n) in counts.enumerate() {
        if n > 0 {
            let name = TYPE_NAMES.get(i).copied().filter(|s| !s.is_empty()).unwrap_or("unknown");
            m.insert(name.into(), n.into());
        }
    }
    serde_json::Value::Object(m)
}

fn stats_json(kernel: &Kernel, reader: &ReaderStats, pipe: &PipelineStats) -> serde_json::Value {
    let lost = kernel.lost_counts();
    let processed = pipe.processed.load(Ordering::Relaxed);
    // decoded but not yet through the pipeline (in the reader's batch or the queue)
    let queue_depth = reader.total_read().saturating_sub(reader.total_queue_dropped()).saturating_sub(processed);
    serde_json::json!({
        "events_read": reader.total_read(),
        "read_by_type": per_type(reader.read.iter().map(|c| c.load(Ordering::Relaxed))),
        "kernel_lost": lost.iter().sum::<u64>(),
        "kernel_lost_by_type": per_type(lost.into_iter()),
        "queue_dropped": reader.total_queue_dropped(),
        "queue_dropped_by_type": per_type(reader.queue_dropped.iter().map(|c| c.load(Ordering::Relaxed))),
        "decode_errors": reader.decode_errors.load(Ordering::Relaxed),
        "processed": processed,
        "queue_depth": queue_depth,
        "synthetic": pipe.synthetic.load(Ordering::Relaxed),
        "alerts": pipe.alerts.load(Ordering::Relaxed),
        "policy_eval_ms": pipe.policy_ns.load(Ordering::Relaxed) / 1_000_000,
        "output_errors": pipe.output_errors.load(Ordering::Relaxed),
    })
}

pub fn main(args: RunArgs) -> ExitCode {
    init_logging();
    let cfg = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sensor: {e}");
            return ExitCode::from(2);
        }
    };
    // an invalid rule set is a configuration error: refuse to start, say why
    let policy = if args.no_policy {
        None
    } else {
        match policy::ReloadableEngine::new(cfg.policy.clone(), sensor_rules::FILES) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("sensor: invalid policy: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match run(cfg, policy, args.duration_secs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sensor: {e}");
            ExitCode::from(1)
        }
    }
}

fn open_audit(
    cfg: &Config,
    synthetic: SyncSender<serde_json::Value>,
) -> Result<Option<Arc<audit::AuditStore>>, String> {
    if !cfg.audit.enabled {
        return Ok(None);
    }
    if let Some(dir) = cfg.audit.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // runs on the audit writer thread: hand off, never block
    let on_health: audit::HealthCallback = Box::new(move |h| {
        let ev = match h {
            audit::HealthEvent::Degraded { reason } => serde_json::json!({"type": "audit_degraded", "reason": reason}),
            audit::HealthEvent::Recovered { degraded_for, lost } => serde_json::json!({
                "type": "audit_recovered", "degraded_for_ms": degraded_for.as_millis() as u64, "lost": lost,
            }),
        };
        let _ = synthetic.try_send(ev);
    });
    let store = audit::AuditStore::open_with_health(&cfg.audit, on_health)
        .map_err(|e| format!("cannot open the audit trail {}: {e}", cfg.audit.path.display()))?;
    Ok(Some(Arc::new(store)))
}

fn run(cfg: Config, policy: Option<policy::ReloadableEngine>, duration_secs: Option<u64>) -> Result<(), String> {
    // before touching anything else: the clearest error when not root or without BTF
    crate::kernel::check_privileges().map_err(|e| e.to_string())?;
    let host = cfg.host.clone().unwrap_or_else(hostname);
    let (synthetic_tx, synthetic_rx) = std::sync::mpsc::sync_channel::<serde_json::Value>(1024);
    let audit = open_audit(&cfg, synthetic_tx.clone())?;
    let mut kernel = Kernel::load(&kernel_options(&cfg)).map_err(|e| e.to_string())?;
    for (prog, why) in kernel.skipped() {
        tracing::warn!("program {prog} not attached: {why}");
    }

    // Processes that predate the probes; anything started since attaching is
    // also seen by the exec probe, and the later record wins.
    let mut table = ProcTable::new(cfg.process_table.capacity);
    let scanned = table.scan_procfs();

    let pipe_stats = Arc::new(PipelineStats::default());
    let mut processor = Processor::new(&host, pipe_stats.clone());
    let events_out = cfg.events_out.clone().unwrap_or_else(|| "-".into());
    if events_out != "none" {
        processor.events_out =
            Some(JsonLines::open(&events_out).map_err(|e| format!("cannot open --events-out {events_out}: {e}"))?);
    }
    processor.audit = audit.clone();
    if cfg.kernel.events.iter().any(|e| e == "l7") {
        processor.l7 = Some((crate::l7::Tracker::new(&cfg.l7), cfg.l7.emit.clone()));
    }
    let topology_slot = crate::topo::TopologySlot::default();
    if cfg.topology.enabled {
        processor.topology = Some(crate::topo::Topology::new(&cfg.topology, topology_slot.clone()));
    }
    let anomaly_slot = crate::anomaly_glue::StatsSlot::default();
    if cfg.anomaly.enabled {
        match &mut processor.topology {
            Some(t) => {
                let path =
                    cfg.anomaly.path.clone().unwrap_or_else(|| crate::anomaly_glue::default_path(&cfg.audit.path));
                t.record_activity(crate::anomaly_glue::ACTIVITY_CAP);
                processor.anomaly =
                    Some(crate::anomaly_glue::AnomalyGlue::open(&cfg.anomaly, &path, anomaly_slot.clone()));
            }
            None => tracing::warn!("anomaly detection is off: it learns from the topology, and [topology] is off"),
        }
    }
    processor.policy = policy.as_ref().map(|p| p.engine());
    let _watch = match &policy {
        Some(p) if cfg.policy.watch => {
            let tx = synthetic_tx.clone();
            Some(p.watch(Duration::from_millis(cfg.policy.watch_interval_ms.max(100)), move |r| match r {
                Ok(s) => tracing::info!("policy reloaded: generation {}, {} rules", s.generation, s.rules),
                Err(e) => {
                    tracing::error!("policy reload failed, keeping the previous rules: {e}");
                    let _ = tx.try_send(e.reload_failed_event());
                }
            }))
        }
        _ => None,
    };

    // The runtime hosts signal handling and the alert sinks' delivery tasks;
    // the hot path (reader, pipeline) stays on plain threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sensor-async")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let alerter = if cfg.alerting.sinks.is_empty() {
        None
    } else {
        let _enter = rt.enter();
        let a = alerting::Alerter::start(cfg.alerting.clone()).map_err(|e| format!("alerting: {e}"))?;
        let a = Arc::new(a);
        let mut health = a.subscribe_health();
        let tx = synthetic_tx.clone();
        rt.spawn(async move {
            while let Ok(ev) = health.recv().await {
                let _ = tx.try_send(crate::alerts::health_event(&ev));
            }
        });
        Some(a)
    };
    let metrics = match &cfg.metrics.addr {
        Some(addr) => {
            let snapshot = crate::metrics::Snapshot::new(topology_slot.clone());
            let addr = crate::metrics::parse_addr(addr)?;
            let bound = crate::metrics::serve(&rt, addr, snapshot.clone())?;
            tracing::info!("metrics at http://{bound}/metrics");
            Some(snapshot)
        }
        None => None,
    };
    // the sensor's job is detection: without its admin socket it still runs
    let admin_path = crate::admin::socket_path(&cfg.admin_socket);
    let admin_bound = match crate::admin::serve(&rt, &admin_path, topology_slot.clone()) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("admin socket off: {e}");
            false
        }
    };
    let alerts_refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(a) = &alerter {
        processor
            .alerts
            .push(Box::new(crate::alerts::AlerterSink { alerter: a.clone(), refused: alerts_refused.clone() }));
    }

    let (tx, rx) = std::sync::mpsc::sync_channel(cfg.pipeline.queue_capacity);
    let pipeline = pipeline::spawn(rx, synthetic_rx, processor).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader_stats = Arc::new(ReaderStats::default());
    let reader = Reader {
        rings: kernel.take_rings().map_err(|e| e.to_string())?,
        enricher: Enricher::new(table, &host),
        tx,
        stop: stop.clone(),
        poll_interval: Duration::from_millis(cfg.kernel.poll_interval_ms),
        stats: reader_stats.clone(),
    }
    .spawn()
    .map_err(|e| e.to_string())?;

    let rules = policy.as_ref().map(|p| p.current().rules().iter().filter(|r| r.enabled).count()).unwrap_or(0);
    eprintln!(
        "sensor ready: {} programs attached, {} processes known, {} rules, audit {}, events to {}",
        kernel.attached_count(),
        scanned,
        rules,
        audit.as_ref().map(|_| cfg.audit.path.display().to_string()).unwrap_or_else(|| "off".into()),
        events_out
    );

    let stats = || {
        let mut v = stats_json(&kernel, &reader_stats, &pipe_stats);
        if let Some(p) = &policy {
            v["policy"] = serde_json::to_value(p.counters()).unwrap_or_default();
        }
        if let Some(a) = &audit {
            v["audit"] = serde_json::to_value(a.stats()).unwrap_or_default();
        }
        if let Some(a) = anomaly_slot.get() {
            v["anomaly"] = a;
        }
        if let Some(a) = &alerter {
            v["alerting"] = serde_json::to_value(a.stats()).unwrap_or_default();
            v["alerts_refused"] = alerts_refused.load(Ordering::Relaxed).into();
        }
        v
    };
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let interval = cfg.pipeline.stats_interval_secs;
        let mut tick = tokio::time::interval(Duration::from_secs(interval.max(1)));
        tick.tick().await;
        // the metrics endpoint serves the latest of these snapshots
        let mut publish = tokio::time::interval(Duration::from_secs(1));
        let deadline = async {
            match duration_secs {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = &mut deadline => break,
                _ = hup.recv() => match &policy {
                    Some(p) => match p.reload() {
                        Ok(s) => tracing::info!("SIGHUP: policy reloaded: generation {}, {} rules", s.generation, s.rules),
                        Err(e) => {
                            tracing::error!("SIGHUP: policy reload failed, keeping the previous rules: {e}");
                            let _ = synthetic_tx.try_send(e.reload_failed_event());
                        }
                    },
                    None => tracing::info!("SIGHUP: policy is off, nothing to reload"),
                },
                _ = tick.tick(), if interval > 0 => tracing::info!("stats {}", stats()),
                _ = publish.tick(), if metrics.is_some() => {
                    if let Some(m) = &metrics {
                        m.publish(stats());
                    }
                }
            }
        }
    });

    // Orderly stop: the reader drains what the kernel queued, the pipeline
    // drains the queue and flushes, the audit trail commits, then dropping
    // `kernel` detaches.
    stop.store(true, Ordering::Release);
    let _ = reader.join();
    drop(synthetic_tx);
    let _ = pipeline.join();
    let mut final_stats = stats();
    // deliver what the sinks can in a few seconds; the rest stays in the outbox
    if let Some(a) = alerter.and_then(|a| Arc::try_unwrap(a).ok()) {
        let report = rt.block_on(a.shutdown(Duration::from_secs(5)));
        if report.pending > 0 {
            tracing::info!("{} alert deliveries pending in the outbox for the next start", report.pending);
        }
    }
    if let Some(a) = audit.and_then(|a| Arc::try_unwrap(a).ok()) {
        // after the final commit, so `written` counts everything that was accepted
        final_stats["audit"] = serde_json::to_value(a.shutdown()).unwrap_or_default();
    }
    if admin_bound {
        let _ = std::fs::remove_file(&admin_path);
    }
    eprintln!("sensor stats: {final_stats}");
    drop(kernel);
    Ok(())
}
