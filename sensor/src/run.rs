//! `sensor run`: configuration -> kernel -> reader -> pipeline, then wait for
//! a signal and shut down in order (stop reading, drain, flush, detach).

use crate::cli::RunArgs;
use crate::config::Config;
use crate::enrich::Enricher;
use crate::enrich::proctable::ProcTable;
use crate::kernel::reader::{Reader, ReaderStats};
use crate::kernel::{Kernel, KernelOptions};
use crate::pipeline::{self, JsonLines, PipelineStats, Stage};
use sensor_bpf::wire::TYPE_NAMES;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    serde_json::json!({
        "events_read": reader.total_read(),
        "read_by_type": per_type(reader.read.iter().map(|c| c.load(Ordering::Relaxed))),
        "kernel_lost": lost.iter().sum::<u64>(),
        "kernel_lost_by_type": per_type(lost.into_iter()),
        "queue_dropped": reader.total_queue_dropped(),
        "queue_dropped_by_type": per_type(reader.queue_dropped.iter().map(|c| c.load(Ordering::Relaxed))),
        "decode_errors": reader.decode_errors.load(Ordering::Relaxed),
        "processed": pipe.processed.load(Ordering::Relaxed),
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
    match run(cfg, args.duration_secs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sensor: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cfg: Config, duration_secs: Option<u64>) -> Result<(), String> {
    let host = cfg.host.clone().unwrap_or_else(hostname);
    let mut kernel = Kernel::load(&kernel_options(&cfg)).map_err(|e| e.to_string())?;
    for (prog, why) in kernel.skipped() {
        tracing::warn!("program {prog} not attached: {why}");
    }

    // Processes that predate the probes; anything started since attaching is
    // also seen by the exec probe, and the later record wins.
    let mut table = ProcTable::new(cfg.process_table.capacity);
    let scanned = table.scan_procfs();

    let pipe_stats = Arc::new(PipelineStats::default());
    let mut stages: Vec<Box<dyn Stage>> = Vec::new();
    let events_out = cfg.events_out.clone().unwrap_or_else(|| "-".into());
    if events_out != "none" {
        let out = JsonLines::open(&events_out, pipe_stats.clone())
            .map_err(|e| format!("cannot open --events-out {events_out}: {e}"))?;
        stages.push(Box::new(out));
    }

    let (tx, rx) = std::sync::mpsc::sync_channel(cfg.pipeline.queue_capacity);
    let pipeline = pipeline::spawn(rx, stages, pipe_stats.clone()).map_err(|e| e.to_string())?;
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

    eprintln!(
        "sensor ready: {} programs attached, {} processes known, events to {}",
        kernel.attached_count(),
        scanned,
        events_out
    );

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let interval = cfg.pipeline.stats_interval_secs;
        let mut tick = tokio::time::interval(Duration::from_secs(interval.max(1)));
        tick.tick().await;
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
                _ = tick.tick(), if interval > 0 => {
                    tracing::info!("stats {}", stats_json(&kernel, &reader_stats, &pipe_stats));
                }
            }
        }
    });

    // Orderly stop: the reader drains what the kernel queued, the pipeline
    // drains the queue and flushes, then dropping `kernel` detaches.
    stop.store(true, Ordering::Release);
    let _ = reader.join();
    let _ = pipeline.join();
    eprintln!("sensor stats: {}", stats_json(&kernel, &reader_stats, &pipe_stats));
    drop(kernel);
    Ok(())
}
