//! The kernel reader: one thread that drains every ring buffer, decodes,
//! orders and enriches the records, and hands events to the pipeline.
//!
//! Why a plain thread and poll(2) rather than tokio's AsyncFd: the kernel
//! wakes us only when a batch is waiting (BPF_RB_NO_WAKEUP otherwise), so
//! the reader must also wake on a short timer; a blocking poll with a
//! timeout does exactly that, and keeps decoding off the async runtime.
//! The reader never blocks on the pipeline: when the queue is full it drops
//! and counts, so the kernel side keeps draining.

use crate::decode;
use crate::enrich::Enricher;
use crate::event::Event;
use aya::maps::{MapData, RingBuf};
use sensor_bpf::wire::EV_TYPE_MAX;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters the reader keeps; read by the stats reporter.
#[derive(Default)]
pub struct ReaderStats {
    pub read: [AtomicU64; EV_TYPE_MAX as usize],
    /// Events dropped because the pipeline queue was full.
    pub queue_dropped: [AtomicU64; EV_TYPE_MAX as usize],
    pub decode_errors: AtomicU64,
    pub batches: AtomicU64,
}

impl ReaderStats {
    pub fn total_read(&self) -> u64 {
        self.read.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    pub fn total_queue_dropped(&self) -> u64 {
        self.queue_dropped.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// Upper bound on records gathered before they are processed, so one
/// flooded ring cannot make a batch (and its memory) unbounded.
const BATCH_MAX: usize = 16384;

/// How long a record can be stamped (at its program's start) before it is
/// committed to its ring: the longest path walks take microseconds.
const COMMIT_MARGIN_NS: u64 = 2_000_000;

fn boot_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub struct Reader {
    pub rings: Vec<(&'static str, RingBuf<MapData>)>,
    pub enricher: Enricher,
    pub tx: SyncSender<Event>,
    pub stop: Arc<AtomicBool>,
    pub poll_interval: Duration,
    pub stats: Arc<ReaderStats>,
}

impl Reader {
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("kernel-reader".into()).spawn(move || self.run())
    }

    fn run(mut self) {
        let mut batch: Vec<decode::Record> = Vec::with_capacity(1024);
        // records newer than what every ring is known to hold, for the next turn
        let mut held: Vec<decode::Record> = Vec::new();
        let mut fds: Vec<libc::pollfd> = self
            .rings
            .iter()
            .map(|(_, r)| libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        let timeout_ms = self.poll_interval.as_millis().clamp(1, 1000) as i32;
        let mut last_clock_sync = Instant::now();
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if !stopping {
                // SAFETY: fds is a valid array of pollfd for the call's duration.
                unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            }
            // drain until the rings are empty (bounded per batch)
            loop {
                batch.append(&mut held);
                let (n, watermark) = self.drain_into(&mut batch);
                if batch.is_empty() {
                    break;
                }
                // The rings are drained one after another: a record in a
                // ring drained later may be newer than records still being
                // written to a ring drained earlier (an exec, then the new
                // image's first open). Only records older than every ring's
                // drain moment are in order; newer ones wait for the next turn.
                if !stopping {
                    held.extend(batch.extract_if(.., |r| r.hdr.ts_boot_ns > watermark));
                }
                self.process(&mut batch);
                if n < BATCH_MAX {
                    break;
                }
            }
            if stopping {
                if !held.is_empty() {
                    self.process(&mut held);
                }
                return;
            }
            if last_clock_sync.elapsed() > Duration::from_secs(10) {
                self.enricher.resync_clock();
                last_clock_sync = Instant::now();
            }
        }
    }

    /// Reads the rings into `batch`; returns the records read and the time
    /// up to which every ring's records are all in (the watermark).
    fn drain_into(&mut self, batch: &mut Vec<decode::Record>) -> (usize, u64) {
        let mut n = 0;
        let mut watermark = u64::MAX;
        for (_, ring) in self.rings.iter_mut() {
            let mut last_ts = None;
            let mut emptied = false;
            while n < BATCH_MAX {
                let Some(item) = ring.next() else {
                    emptied = true;
                    break;
                };
                n += 1;
                match decode::decode(&item) {
                    Ok(rec) => {
                        if let Some(c) = self.stats.read.get(rec.hdr.ty as usize) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        last_ts = Some(rec.hdr.ts_boot_ns);
                        batch.push(rec);
                    }
                    Err(_) => {
                        self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // an emptied ring holds everything stamped before now (minus the
            // commit margin); a ring cut off by the batch bound, up to its last record
            let complete_to = if emptied { boot_ns().saturating_sub(COMMIT_MARGIN_NS) } else { last_ts.unwrap_or(0) };
            watermark = watermark.min(complete_to);
        }
        (n, watermark)
    }

    fn process(&mut self, batch: &mut Vec<decode::Record>) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        // Each ring is in order, but an exec (process ring) must be applied
        // before the same process's next open (file ring): merge by time.
        batch.sort_by_key(|r| r.hdr.ts_boot_ns);
        for rec in batch.drain(..) {
            let ty = rec.hdr.ty as usize;
            let ev = self.enricher.enrich(rec);
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    if let Some(c) = self.stats.queue_dropped.get(ty) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}
