//! The consumer side of the event queue: every enriched event passes through
//! each stage in order (policy, audit, outputs). Runs on its own thread so
//! that slow stages back up into the bounded queue, where the reader drops
//! and counts, instead of stalling the kernel reader.

use crate::event::Event;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One consumer of events. Stages must not block for long: they run inline.
pub trait Stage: Send {
    fn name(&self) -> &'static str;
    fn handle(&mut self, ev: &Event);
    /// Called when the queue goes idle and at least every 100 ms.
    fn flush(&mut self) {}
    /// Called once at shutdown, after the last event.
    fn finish(&mut self) {
        self.flush();
    }
}

#[derive(Default)]
pub struct PipelineStats {
    pub processed: AtomicU64,
    pub output_errors: AtomicU64,
}

/// Writes events as JSON lines (`--events-out`).
pub struct JsonLines {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    stats: Arc<PipelineStats>,
    buf: Vec<u8>,
    failed: bool,
}

impl JsonLines {
    /// `target` is a path or "-" for stdout. A file is appended to.
    pub fn open(target: &str, stats: Arc<PipelineStats>) -> std::io::Result<Self> {
        let w: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        Ok(JsonLines {
            out: std::io::BufWriter::with_capacity(256 * 1024, w),
            stats,
            buf: Vec::with_capacity(1024),
            failed: false,
        })
    }
}

impl Stage for JsonLines {
    fn name(&self) -> &'static str {
        "events-out"
    }

    fn handle(&mut self, ev: &Event) {
        self.buf.clear();
        if serde_json::to_writer(&mut self.buf, ev).is_err() {
            self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.buf.push(b'\n');
        if let Err(e) = self.out.write_all(&self.buf) {
            self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
            if !self.failed {
                // log once per failure streak, not per event
                tracing::error!("events-out: write failed: {e}");
                self.failed = true;
            }
        } else {
            self.failed = false;
        }
    }

    fn flush(&mut self) {
        if self.out.flush().is_err() {
            self.stats.output_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub fn spawn(
    rx: Receiver<Event>,
    mut stages: Vec<Box<dyn Stage>>,
    stats: Arc<PipelineStats>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("pipeline".into()).spawn(move || {
        let mut last_flush = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(ev) => {
                    for s in stages.iter_mut() {
                        s.handle(&ev);
                    }
                    stats.processed.fetch_add(1, Ordering::Relaxed);
                    if last_flush.elapsed() >= Duration::from_millis(100) {
                        stages.iter_mut().for_each(|s| s.flush());
                        last_flush = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    stages.iter_mut().for_each(|s| s.flush());
                    last_flush = Instant::now();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        for s in stages.iter_mut() {
            s.finish();
        }
    })
}
