//! The open segment's postings, built on their own thread ("audit-index").
//!
//! Building postings is about a third of the per-record work (a hash-map
//! update per indexed column, mostly cache misses), so the writer thread
//! hands each committed batch over and goes back to inserting; the indexer
//! returns every segment it completes, and the writer stores it (the writer
//! owns the only write connection). On two cores this turns one saturated
//! writer thread into two that share the machine with the producer.
//!
//! Generations: the writer starts the indexer with a builder rebuilt from the
//! table (`start`) and drops it (`reset`) when storing a segment fails. A
//! segment sealed under an older generation is discarded, so a reset can never
//! let a stale segment be stored after the catch-up path took over.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use crate::index::{SegBuilder, seg_bounds};
use crate::record::Record;

/// Committed batches in flight to the indexer. The writer blocks when the
/// indexer is this far behind, which bounds memory (each batch is at most
/// `batch_rows` records).
const QUEUE_BATCHES: usize = 4;

enum Msg {
    Start {
        generation: u64,
        builder: SegBuilder,
    },
    Rows {
        first_seq: u64,
        rows: Vec<Record>,
    },
    Reset,
    /// Answered once everything sent before it has been indexed.
    Barrier(SyncSender<()>),
}

/// A complete segment's postings, ready to be stored.
pub(crate) struct Sealed {
    pub generation: u64,
    pub builder: SegBuilder,
}

pub(crate) struct Indexer {
    tx: Option<SyncSender<Msg>>,
    sealed: Receiver<Sealed>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub fn spawn(seg_rows: u64) -> std::io::Result<Indexer> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        // Unbounded, but at most one entry per `seg_rows` records sent.
        let (sealed_tx, sealed) = mpsc::channel();
        let thread =
            std::thread::Builder::new().name("audit-index".into()).spawn(move || run(rx, sealed_tx, seg_rows))?;
        Ok(Indexer { tx: Some(tx), sealed, thread: Some(thread) })
    }

    /// Index from `builder` on (it holds the open segment's rows so far).
    /// False if the indexer thread is gone.
    pub fn start(&self, generation: u64, builder: SegBuilder) -> bool {
        self.send(Msg::Start { generation, builder })
    }

    /// Records `first_seq..` were committed. False if the indexer thread is gone.
    pub fn rows(&self, first_seq: u64, rows: Vec<Record>) -> bool {
        self.send(Msg::Rows { first_seq, rows })
    }

    pub fn reset(&self) {
        self.send(Msg::Reset);
    }

    /// Wait until everything sent so far has been indexed (flush, shutdown).
    pub fn barrier(&self) {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if self.send(Msg::Barrier(ack_tx)) {
            let _ = ack_rx.recv();
        }
    }

    /// Segments completed since the last call, oldest first.
    pub fn take_sealed(&self) -> Vec<Sealed> {
        let mut out = Vec::new();
        loop {
            match self.sealed.try_recv() {
                Ok(s) => out.push(s),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }

    fn send(&self, m: Msg) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(m).is_ok())
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Msg>, sealed: Sender<Sealed>, seg_rows: u64) {
    let mut current: Option<(u64, SegBuilder)> = None;
    for m in rx {
        match m {
            Msg::Start { generation, builder } => current = Some((generation, builder)),
            Msg::Reset => current = None,
            Msg::Barrier(ack) => {
                let _ = ack.send(());
            }
            // Rows while out of sync are not needed: the catch-up path reads them from the table.
            Msg::Rows { first_seq, rows } => {
                let Some((generation, b)) = &mut current else { continue };
                for (seq, r) in (first_seq..).zip(&rows) {
                    b.add_record(seq, r);
                    if seq >= seg_bounds(b.seg, seg_rows).1 {
                        let next = SegBuilder::new(b.seg + 1, seg_rows);
                        let builder = std::mem::replace(b, next);
                        if sealed.send(Sealed { generation: *generation, builder }).is_err() {
                            return;
                        }
                    }
                }
                // The records (their strings) are freed here, off the writer thread.
            }
        }
    }
}
