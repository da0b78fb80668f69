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
                let n = self.drain_into(&mut batch);
                if n == 0 {
                    break;
                }
                self.process(&mut batch);
                if n < BATCH_MAX {
                    break;
                }
            }
            if stopping {
                return;
            }
            if last_clock_sync.elapsed() > Duration::from_secs(10) {
                self.enricher.resync_clock();
                last_clock_sync = Instant::now();
            }
        }
    }

    fn drain_into(&mut self, batch: &mut Vec<decode::Record>) -> usize {
        let mut n = 0;
        for (_, ring) in self.rings.iter_mut() {
            while n < BATCH_MAX {
                let Some(item) = ring.next() else { break };
                n += 1;
                match decode::decode(&item) {
                    Ok(rec) => {
                        if let Some(c) = self.stats.read.get(rec.hdr.ty as usize) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        batch.push(rec);
                    }
                    Err(_) => {
                        self.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        n
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
