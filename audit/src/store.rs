//! The writer side: `AuditStore` owns one writer thread fed by a bounded channel.
//!
//! Concurrency: callers (the sensor pipeline) never block. They build the row
//! (column extraction + JSON serialization) on their own thread and `try_send`
//! it; a full channel is a counted drop. One thread owns the rusqlite
//! `Connection` (Send, not Sync), batches rows into transactions, extends the
//! hash chain, writes checkpoints and applies retention between batches, so no
//! lock is ever held across SQLite calls and readers (the CLI) use their own
//! connections under WAL.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::AuditError;
use crate::config::AuditConfig;
use crate::error::sql_err;
use crate::index::{SegBuilder, seg_bounds, seg_of};
use crate::indexer::Indexer;
use crate::record::EventColumns;
use crate::record::{CHAIN_HMAC, CHAIN_SHA256, ChainHasher, Field, Hash, Record, ZERO_HASH};
use crate::schema::{meta_get, meta_set, open_checkpointer, open_writer};
use crate::time::{format_rfc3339_ns, now_ns};

/// Rows deleted per retention transaction: small enough that the writer is
/// back to inserting within tens of milliseconds.
const PRUNE_CHUNK: u64 = 10_000;
/// Free pages returned to the filesystem per retention step.
const VACUUM_PAGES: i64 = 4_096;
/// WAL length (frames) above which the writer lets a checkpoint pass finish
/// before its next batch, so that batch restarts the WAL from the beginning.
const WAL_RESTART_FRAMES: i64 = 32_768;
/// Longest the writer waits for that pass.
const WAL_RESTART_WAIT: Duration = Duration::from_secs(2);

/// Health transitions, delivered to the callback given to [`AuditStore::open_with_health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// Writes to the database fail (e.g. disk full); rows are buffered in memory.
    Degraded { reason: String },
    /// Writes succeed again; `lost` rows were dropped while degraded.
    Recovered { degraded_for: Duration, lost: u64 },
}

/// Called on the writer thread; must return quickly (e.g. `try_send` into the sensor's own channel).
pub type HealthCallback = Box<dyn Fn(&HealthEvent) + Send + 'static>;

/// Counters readable at any time through [`AuditStore::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditStats {
    /// Events/alerts handed to the writer.
    pub accepted: u64,
    /// Events/alerts committed to the database.
    pub written: u64,
    /// Events skipped by `include_types` / `exclude_types` / `skip_path_prefixes`.
    pub filtered: u64,
    /// Dropped because the channel was full (or the writer was gone).
    pub dropped_channel_full: u64,
    /// Dropped because the degraded buffer overflowed or could not be written at shutdown.
    pub dropped_degraded: u64,
    /// True while the database cannot be written.
    pub degraded: bool,
    pub degraded_reason: Option<String>,
    /// Rows accepted but not yet committed (the degraded buffer while degraded).
    pub buffered: u64,
    pub batches: u64,
    pub write_errors: u64,
    /// Rows deleted by retention.
    pub pruned: u64,
    /// Marker rows the store wrote about itself (drops, recovery).
    pub markers: u64,
    /// Database + WAL size on disk.
    pub db_bytes: u64,
    /// Chain position of the newest committed row.
    pub last_seq: u64,
}

impl AuditStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_channel_full + self.dropped_degraded
    }
}

#[derive(Default)]
struct Shared {
    accepted: AtomicU64,
    written: AtomicU64,
    filtered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_degraded: AtomicU64,
    degraded: AtomicBool,
    degraded_reason: Mutex<Option<String>>,
    buffered: AtomicU64,
    batches: AtomicU64,
    write_errors: AtomicU64,
    pruned: AtomicU64,
    markers: AtomicU64,
    db_bytes: AtomicU64,
    last_seq: AtomicU64,
}

// Records are the hot path; boxing them would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Rec(Record),
    Flush(SyncSender<Result<(), String>>),
    Shutdown,
}

/// Which events are worth storing; checked on the caller's thread before any allocation.
#[derive(Debug, Clone)]
struct EventFilter {
    include: Vec<String>,
    exclude: Vec<String>,
    skip_prefixes: Vec<String>,
    read_opens: crate::config::ReadOpens,
    sensitive_prefixes: Vec<String>,
}

impl EventFilter {
    fn keep(&self, c: &EventColumns<'_>) -> bool {
        let typ = c.typ.unwrap_or("");
        if !self.include.is_empty() && !self.include.iter().any(|t| t == typ) {
            return false;
        }
        if self.exclude.iter().any(|t| t == typ) {
            return false;
        }
        if !self.skip_prefixes.is_empty()
            && let Some(p) = c.path
            && self.skip_prefixes.iter().any(|pre| p.starts_with(pre.as_str()))
        {
            return false;
        }
        if typ == "open" && c.read_only_open {
            use crate::config::ReadOpens;
            return match self.read_opens {
                ReadOpens::All => true,
                ReadOpens::None => false,
                ReadOpens::Sensitive => {
                    c.path.is_some_and(|p| self.sensitive_prefixes.iter().any(|pre| p.starts_with(pre.as_str())))
                }
            };
        }
        true
    }
}

/// Handle to the audit store. Dropping it flushes and stops the writer (like [`AuditStore::shutdown`]).
pub struct AuditStore {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    filter: EventFilter,
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl AuditStore {
    /// Open or create the database and start the writer thread.
    pub fn open(cfg: &AuditConfig) -> Result<AuditStore, AuditError> {
        Self::open_inner(cfg, None)
    }

    /// Like [`open`](Self::open), with a callback for degraded/recovered transitions
    /// (the sensor turns these into `audit_degraded` events).
    pub fn open_with_health(cfg: &AuditConfig, on_health: HealthCallback) -> Result<AuditStore, AuditError> {
        Self::open_inner(cfg, Some(on_health))
    }

    fn open_inner(cfg: &AuditConfig, health: Option<HealthCallback>) -> Result<AuditStore, AuditError> {
        if !cfg.enabled {
            return Err(AuditError::Disabled);
        }
        cfg.validate()?;
        let conn = open_writer(&cfg.path)?;
        let shared = Arc::new(Shared::default());
        let writer = Writer::new(conn, cfg, shared.clone(), health)?;
        let (tx, rx) = mpsc::sync_channel(cfg.channel_capacity);
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::Io { what: "spawning audit writer for", path: cfg.path.clone(), source: e })?;
        Ok(AuditStore {
            tx,
            shared,
            filter: EventFilter {
                include: cfg.include_types.clone(),
                exclude: cfg.exclude_types.clone(),
                skip_prefixes: cfg.skip_path_prefixes.clone(),
                read_opens: cfg.read_opens,
                sensitive_prefixes: cfg.sensitive_prefixes.clone(),
            },
            path: cfg.path.clone(),
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record one sensor event. Never blocks; returns false if it was filtered out
    /// by the configuration or dropped (counted) because the channel is full.
    pub fn record_event(&self, ev: &Value) -> bool {
        let cols = EventColumns::from_json(ev);
        self.record_event_with(&cols, || serde_json::to_string(ev).unwrap_or_else(|_| "null".into()))
    }

    /// Record one event given its indexed columns; `json` (the event as one
    /// JSON object, the `--events-out` form) is called only if the event is
    /// kept, so a caller that holds a typed event serializes it once, and
    /// only when it is stored. Never blocks; false if filtered out or dropped.
    pub fn record_event_with(&self, cols: &EventColumns<'_>, json: impl FnOnce() -> String) -> bool {
        if !self.filter.keep(cols) {
            self.shared.filtered.fetch_add(1, Relaxed);
            return false;
        }
        self.send(Record::from_columns(cols, json(), now_ns()))
    }

    /// Record one alert (never filtered). Never blocks; false if dropped (counted).
    pub fn record_alert(&self, alert: &Value) -> bool {
        self.send(Record::from_alert(alert, now_ns()))
    }

    fn send(&self, r: Record) -> bool {
        match self.tx.try_send(Msg::Rec(r)) {
            Ok(()) => {
                self.shared.accepted.fetch_add(1, Relaxed);
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.dropped_full.fetch_add(1, Relaxed);
                false
            }
        }
    }

    pub fn stats(&self) -> AuditStats {
        let s = &self.shared;
        AuditStats {
            accepted: s.accepted.load(Relaxed),
            written: s.written.load(Relaxed),
            filtered: s.filtered.load(Relaxed),
            dropped_channel_full: s.dropped_full.load(Relaxed),
            dropped_degraded: s.dropped_degraded.load(Relaxed),
            degraded: s.degraded.load(Relaxed),
            degraded_reason: s.degraded_reason.lock().map(|g| g.clone()).unwrap_or(None),
            buffered: s.buffered.load(Relaxed),
            batches: s.batches.load(Relaxed),
            write_errors: s.write_errors.load(Relaxed),
            pruned: s.pruned.load(Relaxed),
            markers: s.markers.load(Relaxed),
            db_bytes: s.db_bytes.load(Relaxed),
            last_seq: s.last_seq.load(Relaxed),
        }
    }

    pub fn is_degraded(&self) -> bool {
        self.shared.degraded.load(Relaxed)
    }

    /// Commit everything accepted so far. This is the one call that may wait
    /// (for the writer to take the request). Err(Degraded) if rows are still only buffered.
    pub fn flush(&self) -> Result<(), AuditError> {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Flush(ack_tx)).map_err(|_| AuditError::WriterGone)?;
        match ack_rx.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(AuditError::Degraded(reason)),
            Err(_) => Err(AuditError::WriterGone),
        }
    }

    /// Flush everything accepted, write a final checkpoint and stop the writer.
    pub fn shutdown(mut self) -> AuditStats {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.tx.send(Msg::Shutdown);
            let _ = t.join();
        }
    }
}

impl Drop for AuditStore {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Default)]
struct CkState {
    requested: u64,
    done: u64,
    /// WAL frames seen by the last pass (grows until the WAL restarts).
    wal_frames: i64,
    /// The last pass copied every frame it saw back into the database.
    last_full: bool,
    stop: bool,
}

/// Runs `PRAGMA wal_checkpoint(PASSIVE)` on its own connection and thread after
/// each commit, so copying WAL frames into the database file and the fsyncs that
/// go with it overlap with the writer's next batch instead of stalling it (the
/// writer connection's autocheckpoint is off while this runs). Readers and the
/// kill -9 guarantees are unaffected: checkpointing is SQLite's own, only on
/// another connection.
struct Checkpointer {
    state: Arc<(Mutex<CkState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<CkState>) -> MutexGuard<'_, CkState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Checkpointer> {
        let conn = open_checkpointer(path).ok()?;
        let state = Arc::new((Mutex::new(CkState::default()), Condvar::new()));
        let st = state.clone();
        let thread = std::thread::Builder::new().name("audit-ckpt".into()).spawn(move || Self::run(conn, &st)).ok()?;
        Some(Checkpointer { state, thread: Some(thread) })
    }

    fn run(conn: Connection, st: &(Mutex<CkState>, Condvar)) {
        let (m, cv) = st;
        let mut g = lock(m);
        loop {
            while !g.stop && g.requested == g.done {
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.stop {
                break;
            }
            let ticket = g.requested;
            drop(g);
            let res = conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)));
            g = lock(m);
            if let Ok((log, done)) = res {
                g.wal_frames = log;
                g.last_full = log >= 0 && done >= log;
            } else {
                g.last_full = false;
            }
            g.done = ticket;
            cv.notify_all();
        }
    }

    /// After a commit: ask for a pass (coalesced with one already pending).
    fn request(&self) {
        let (m, cv) = &*self.state;
        lock(m).requested += 1;
        cv.notify_all();
    }

    /// Before a batch: a writer that never pauses would append to the WAL
    /// forever (it only restarts when a write begins with every frame copied
    /// back). When it has grown large, run one pass while the writer is idle.
    fn bound_wal(&self) {
        let (m, cv) = &*self.state;
        let mut g = lock(m);
        if g.wal_frames < WAL_RESTART_FRAMES {
            return;
        }
        g.requested += 1;
        let ticket = g.requested;
        cv.notify_all();
        let (mut g, _) = cv
            .wait_timeout_while(g, WAL_RESTART_WAIT, |s| s.done < ticket && !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        if g.done >= ticket && g.last_full {
            // The next write starts the WAL over.
            g.wal_frames = 0;
        }
    }

    fn stop(&mut self) {
        if let Some(t) = self.thread.take() {
            let (m, cv) = &*self.state;
            lock(m).stop = true;
            cv.notify_all();
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Checkpoint chain state.
#[derive(Clone, Copy)]
struct CpState {
    id: i64,
    hash: Hash,
    seq: u64,
}

struct Writer {
    // Declared before `conn` so it is stopped (its connection closed) first:
    // the last connection to close checkpoints and removes the WAL.
    ckpt: Option<Checkpointer>,
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    health: Option<HealthCallback>,
    batch_rows: usize,
    batch_interval: Duration,
    buffer_cap: usize,
    retry: Duration,
    retention_interval: Duration,
    max_age: Duration,
    max_bytes: u64,
    checkpoint_every: u64,
    // chain
    head_seq: u64,
    head_hash: Hash,
    first_seq: u64,
    anchor: Hash,
    cp: Option<CpState>,
    hasher: ChainHasher,
    // segment index (see index.rs): segments up to `indexed_through` are stored.
    // In sync (`in_sync` = the indexer's generation), the indexer thread holds
    // the postings of (indexed_through, head_seq] and returns each segment it
    // completes; None while complete segments still have to be built from the table.
    seg_rows: u64,
    indexed_through: u64,
    indexer: Indexer,
    in_sync: Option<u64>,
    generation: u64,
    index_retry_at: Instant,
    // batching and health
    pending: VecDeque<Record>,
    batch_started: Option<Instant>,
    degraded_since: Option<Instant>,
    last_attempt: Instant,
    drops_recorded: u64,
    recovery_marker: Option<Value>,
    next_retention: Instant,
    prune_more: bool,
}

impl Writer {
    fn new(
        conn: Connection,
        cfg: &AuditConfig,
        shared: Arc<Shared>,
        health: Option<HealthCallback>,
    ) -> Result<Writer, AuditError> {
        let err = sql_err(&cfg.path);
        let (head_seq, head_hash): (i64, Vec<u8>) = conn
            .query_row("SELECT seq, hash FROM head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(&err)?
            .ok_or_else(|| AuditError::Corrupt {
                path: cfg.path.clone(),
                detail: "chain head row is missing (tampered?); run `sensor audit verify`".into(),
            })?;
        let cp = conn
            .query_row(
                "SELECT id, cp_hash, seq, first_seq, anchor FROM checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(&err)?;
        let to_hash = |v: Vec<u8>| -> Hash { v.try_into().unwrap_or(ZERO_HASH) };
        let (cp, first_seq, anchor) = match cp {
            Some((id, h, seq, first, anchor)) => {
                (Some(CpState { id, hash: to_hash(h), seq: seq as u64 }), first as u64, to_hash(anchor))
            }
            None => (None, 1, ZERO_HASH),
        };
        let hasher = match &cfg.key_file {
            Some(p) => crate::keys::load_key(p)?,
            None => ChainHasher::Sha256,
        };
        let has_cp = cp.is_some();
        let (hasher, seg_rows) = chain_settings(&conn, cfg, hasher, head_seq as u64, has_cp).map_err(|e| match e {
            SettingsError::Sql(e) => err(e),
            SettingsError::Audit(e) => e,
        })?;
        let max_seg: Option<i64> = conn.query_row("SELECT max(seg) FROM segments", [], |r| r.get(0)).map_err(&err)?;
        // Everything below the retained range needs no index.
        let indexed_through =
            max_seg.map_or(0, |s| seg_bounds(s as u64, seg_rows).1).max(seg_of(first_seq, seg_rows) * seg_rows);
        let ckpt = Checkpointer::start(&cfg.path);
        if ckpt.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(&err)?;
        }
        let now = Instant::now();
        let mut w = Writer {
            ckpt,
            conn,
            path: cfg.path.clone(),
            shared,
            health,
            batch_rows: cfg.batch_rows,
            batch_interval: cfg.batch_interval.0,
            buffer_cap: cfg.degraded_buffer_rows.max(cfg.batch_rows),
            retry: cfg.degraded_retry.0,
            retention_interval: cfg.retention_interval.0,
            max_age: cfg.max_age.0,
            max_bytes: cfg.max_bytes.0,
            checkpoint_every: cfg.checkpoint_every,
            head_seq: head_seq as u64,
            head_hash: to_hash(head_hash),
            first_seq,
            anchor,
            cp,
            hasher,
            seg_rows,
            indexed_through,
            indexer: Indexer::spawn(seg_rows).map_err(|e| AuditError::Io {
                what: "spawning audit indexer for",
                path: cfg.path.clone(),
                source: e,
            })?,
            in_sync: None,
            generation: 0,
            index_retry_at: now,
            pending: VecDeque::new(),
            batch_started: None,
            degraded_since: None,
            last_attempt: now,
            drops_recorded: 0,
            recovery_marker: None,
            // First retention pass soon after start, not a full interval later.
            next_retention: now + Duration::from_millis(200),
            prune_more: false,
        };
        w.shared.last_seq.store(w.head_seq, Relaxed);
        // The open segment's postings, rebuilt from the table (at most one
        // segment; more after a v1 migration, which `maintenance` catches up).
        w.load_open_segment().map_err(&err)?;
        w.update_db_bytes();
        Ok(w)
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut acks: Vec<SyncSender<Result<(), String>>> = Vec::new();
        let mut shutdown = false;
        loop {
            let now = Instant::now();
            let msg = match self.wait_time(now) {
                Some(t) if !t.is_zero() => rx.recv_timeout(t),
                _ => rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                }),
            };
            match msg {
                Ok(m) => self.on_msg(m, &mut acks, &mut shutdown),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => shutdown = true,
            }
            // Drain what is already queued, bounded so maintenance still gets turns.
            let mut n = 0;
            while !shutdown && n < self.batch_rows {
                match rx.try_recv() {
                    Ok(m) => self.on_msg(m, &mut acks, &mut shutdown),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => shutdown = true,
                }
                n += 1;
            }
            let now = Instant::now();
            let forced = shutdown || !acks.is_empty();
            let due = forced
                || self.pending.len() >= self.batch_rows
                || self
                    .batch_started
                    .is_some_and(|t| now >= t + self.batch_interval)
                // Markers ride along with normal batches; alone they wait one interval
                // so a stream of drops does not turn into one commit per loop turn.
                || (self.pending.is_empty()
                    && self.markers_due()
                    && now >= self.last_attempt + self.batch_interval);
            let may_write = self.degraded_since.is_none() || forced || now >= self.last_attempt + self.retry;
            if due && may_write {
                self.write_pending();
            }
            if !acks.is_empty() {
                // A flush also stores the segments completed by what it committed.
                self.indexer.barrier();
                self.store_sealed();
                let res = match self.degraded_since {
                    None if self.pending.is_empty() => Ok(()),
                    _ => Err(self.reason()),
                };
                for a in acks.drain(..) {
                    let _ = a.send(res.clone());
                }
            }
            if shutdown {
                self.finish();
                return;
            }
            if self.degraded_since.is_none() {
                self.maintenance(now);
            }
        }
    }

    /// How long the loop may sleep waiting for the next message.
    fn wait_time(&self, now: Instant) -> Option<Duration> {
        let deadline = if self.degraded_since.is_some() {
            self.last_attempt + self.retry
        } else if let Some(t) = self.batch_started {
            if self.pending.len() >= self.batch_rows {
                return None;
            }
            t + self.batch_interval
        } else if self.prune_more || (self.in_sync.is_none() && now >= self.index_retry_at) {
            return None;
        } else {
            self.next_retention.min(now + Duration::from_secs(1))
        };
        Some(deadline.saturating_duration_since(now))
    }

    fn on_msg(&mut self, m: Msg, acks: &mut Vec<SyncSender<Result<(), String>>>, shutdown: &mut bool) {
        match m {
            Msg::Rec(r) => {
                if self.pending.len() >= self.buffer_cap {
                    // Keep the oldest (already buffered) rows: they are the start of the story.
                    self.shared.dropped_degraded.fetch_add(1, Relaxed);
                } else {
                    self.pending.push_back(r);
                    self.batch_started.get_or_insert_with(Instant::now);
                }
                self.shared.buffered.store(self.pending.len() as u64, Relaxed);
            }
            Msg::Flush(ack) => acks.push(ack),
            Msg::Shutdown => *shutdown = true,
        }
    }

    fn total_drops(&self) -> u64 {
        self.shared.dropped_full.load(Relaxed) + self.shared.dropped_degraded.load(Relaxed)
    }

    fn markers_due(&self) -> bool {
        self.recovery_marker.is_some() || self.total_drops() > self.drops_recorded
    }

    fn reason(&self) -> String {
        self.shared.degraded_reason.lock().ok().and_then(|g| g.clone()).unwrap_or_else(|| "degraded".into())
    }

    /// Losses are written into the trail itself so a gap is visible to whoever reads it later.
    fn take_markers(&self) -> (Vec<Record>, u64) {
        let now = now_ns();
        let mut out = Vec::new();
        if let Some(m) = &self.recovery_marker {
            out.push(Record::marker("audit_recovered", m.clone(), now));
        }
        let drops = self.total_drops();
        if drops > self.drops_recorded {
            out.push(Record::marker(
                "audit_dropped",
                json!({
                    "type": "audit_dropped",
                    "ts": format_rfc3339_ns(now),
                    "dropped": drops - self.drops_recorded,
                    "dropped_channel_full_total": self.shared.dropped_full.load(Relaxed),
                    "dropped_degraded_total": self.shared.dropped_degraded.load(Relaxed),
                }),
                now,
            ));
        }
        (out, drops)
    }

    fn write_pending(&mut self) {
        loop {
            let (markers, drops) = self.take_markers();
            if self.pending.is_empty() && markers.is_empty() {
                break;
            }
            self.last_attempt = Instant::now();
            let n = self.pending.len().min(self.batch_rows);
            let start = self.head_seq + 1;
            match self.write_batch(&markers, n) {
                Ok(()) => {
                    let n_markers = markers.len() as u64;
                    let mut rows = markers;
                    rows.extend(self.pending.drain(..n));
                    if self.in_sync.is_some() && !self.indexer.rows(start, rows) {
                        self.indexer_gone();
                    }
                    self.store_sealed();
                    self.shared.written.fetch_add(n as u64, Relaxed);
                    self.shared.markers.fetch_add(n_markers, Relaxed);
                    self.shared.batches.fetch_add(1, Relaxed);
                    self.shared.buffered.store(self.pending.len() as u64, Relaxed);
                    self.drops_recorded = drops;
                    self.recovery_marker = None;
                    if let Some(since) = self.degraded_since.take() {
                        self.recovered(since);
                    }
                }
                Err(e) => {
                    self.shared.write_errors.fetch_add(1, Relaxed);
                    self.set_degraded(e.to_string());
                    break;
                }
            }
        }
        if self.pending.is_empty() {
            self.batch_started = None;
        }
        self.update_db_bytes();
    }

    /// One transaction: markers, then the first `n` pending rows, head update,
    /// maybe a periodic checkpoint. The in-memory chain only advances on commit.
    fn write_batch(&mut self, markers: &[Record], n: usize) -> rusqlite::Result<()> {
        if let Some(c) = &self.ckpt {
            c.bound_wal();
        }
        let tx = self.conn.unchecked_transaction()?;
        let mut seq = self.head_seq;
        let mut hash = self.head_hash;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO records (seq, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, rule, severity, json, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for r in markers.iter().chain(self.pending.range(..n)) {
                seq += 1;
                hash = self.hasher.chain(&hash, &r.fields(seq));
                stmt.execute(params![
                    seq as i64,
                    r.ts_ns,
                    r.kind,
                    r.typ(),
                    r.pid,
                    r.uid,
                    r.exe(),
                    r.container(),
                    r.path(),
                    r.daddr(),
                    r.dport,
                    r.rule(),
                    r.severity,
                    r.json(),
                    &hash[..],
                ])?;
            }
        }
        tx.execute("UPDATE head SET seq = ?1, hash = ?2 WHERE id = 1", params![seq as i64, &hash[..]])?;
        let last_cp_seq = self.cp.map_or(0, |c| c.seq);
        let cp = if seq.saturating_sub(last_cp_seq) >= self.checkpoint_every {
            Some(self.insert_checkpoint(&tx, "periodic", seq, &hash)?)
        } else {
            None
        };
        tx.commit()?;
        if let Some(c) = &self.ckpt {
            c.request();
        }
        self.head_seq = seq;
        self.head_hash = hash;
        if cp.is_some() {
            self.cp = cp;
        }
        self.shared.last_seq.store(seq, Relaxed);
        Ok(())
    }

    fn insert_checkpoint(&self, conn: &Connection, reason: &str, seq: u64, hash: &Hash) -> rusqlite::Result<CpState> {
        let id = self.cp.map_or(1, |c| c.id + 1);
        let prev = self.cp.map_or(ZERO_HASH, |c| c.hash);
        let ts = now_ns();
        let cp_hash = self.hasher.checkpoint(
            &prev,
            &checkpoint_fields(id, ts, reason, seq as i64, hash, self.first_seq as i64, &self.anchor),
        );
        conn.execute(
            "INSERT INTO checkpoints (id, ts_ns, reason, seq, hash, first_seq, anchor, prev, cp_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                ts,
                reason,
                seq as i64,
                &hash[..],
                self.first_seq as i64,
                &self.anchor[..],
                &prev[..],
                &cp_hash[..]
            ],
        )?;
        Ok(CpState { id, hash: cp_hash, seq })
    }

    fn set_degraded(&mut self, reason: String) {
        if let Ok(mut g) = self.shared.degraded_reason.lock() {
            *g = Some(reason.clone());
        }
        if self.degraded_since.is_none() {
            self.degraded_since = Some(Instant::now());
            self.shared.degraded.store(true, Relaxed);
            if let Some(cb) = &self.health {
                cb(&HealthEvent::Degraded { reason });
            }
        }
    }

    fn recovered(&mut self, since: Instant) {
        let degraded_for = since.elapsed();
        let lost = self.shared.dropped_degraded.load(Relaxed);
        self.shared.degraded.store(false, Relaxed);
        let reason = self.reason();
        if let Ok(mut g) = self.shared.degraded_reason.lock() {
            *g = None;
        }
        self.recovery_marker = Some(json!({
            "type": "audit_recovered",
            "ts": format_rfc3339_ns(now_ns()),
            "degraded_for_ms": degraded_for.as_millis() as u64,
            "reason": reason,
            "dropped_degraded_total": lost,
        }));
        if let Some(cb) = &self.health {
            cb(&HealthEvent::Recovered { degraded_for, lost });
        }
    }

    fn update_db_bytes(&self) {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        self.shared.db_bytes.store(size(&self.path) + size(Path::new(&wal)), Relaxed);
    }

    fn maintenance(&mut self, now: Instant) {
        self.store_sealed();
        if self.in_sync.is_none() && now >= self.index_retry_at {
            // One segment per turn so batches keep flowing during a catch-up.
            if self.index_step().is_err() {
                self.shared.write_errors.fetch_add(1, Relaxed);
                self.index_retry_at = now + self.retry;
            }
        }
        if !self.prune_more && now < self.next_retention {
            return;
        }
        self.next_retention = now + self.retention_interval;
        match self.retention_step() {
            Ok(more) => self.prune_more = more,
            Err(_) => {
                // Retention failing (e.g. disk full mid-delete) must not stop recording;
                // it is counted and retried at the next interval.
                self.prune_more = false;
                self.shared.write_errors.fetch_add(1, Relaxed);
            }
        }
    }

    /// Delete one chunk of the oldest records if they are too old or the
    /// database is too big. Returns whether another chunk is needed.
    /// Always a prefix of the chain: the new first record's predecessor hash
    /// becomes the anchor in a `prune` checkpoint written in the same
    /// transaction, so verification still starts from a known hash.
    fn retention_step(&mut self) -> rusqlite::Result<bool> {
        if self.head_seq < self.first_seq {
            return Ok(false);
        }
        let count = self.head_seq - self.first_seq + 1;
        let mut cut: u64 = 0;
        if !self.max_age.is_zero() {
            let cutoff = now_ns().saturating_sub(self.max_age.as_nanos().min(i64::MAX as u128) as i64);
            let mut stmt =
                self.conn.prepare_cached("SELECT ts_ns FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
            let mut rows = stmt.query(params![self.first_seq as i64, PRUNE_CHUNK as i64])?;
            while let Some(r) = rows.next()? {
                if r.get::<_, i64>(0)? >= cutoff {
                    break;
                }
                cut += 1;
            }
        }
        if self.max_bytes > 0 {
            let page_size: i64 = self.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let pages: i64 = self.conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let free: i64 = self.conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            let used = ((pages - free).max(0) * page_size) as u64;
            if used > self.max_bytes {
                // Aim 10% below the limit so we do not prune on every batch.
                let target = self.max_bytes / 10 * 9;
                let per_row = (used / count.max(1)).max(1);
                cut = cut.max((used - target).div_ceil(per_row));
            }
        }
        let cut = cut.min(PRUNE_CHUNK).min(count);
        if cut == 0 {
            return Ok(false);
        }
        let new_first = self.first_seq + cut;
        let tx = self.conn.unchecked_transaction()?;
        let anchor: Option<Vec<u8>> = tx
            .query_row("SELECT hash FROM records WHERE seq < ?1 ORDER BY seq DESC LIMIT 1", [new_first as i64], |r| {
                r.get(0)
            })
            .optional()?;
        tx.execute("DELETE FROM records WHERE seq < ?1", [new_first as i64])?;
        tx.execute("DELETE FROM checkpoints WHERE seq < ?1", [new_first as i64])?;
        // Segments wholly before the new first record.
        let dead = seg_of(new_first, self.seg_rows) as i64;
        tx.execute("DELETE FROM postings WHERE seg < ?1", [dead])?;
        tx.execute("DELETE FROM grams WHERE seg < ?1", [dead])?;
        tx.execute("DELETE FROM segments WHERE seg < ?1", [dead])?;
        let (old_first, old_anchor) = (self.first_seq, self.anchor);
        self.first_seq = new_first;
        self.anchor = anchor.and_then(|v| v.try_into().ok()).unwrap_or(self.anchor);
        let cp = match self.insert_checkpoint(&tx, "prune", self.head_seq, &self.head_hash.clone()) {
            Ok(cp) => cp,
            Err(e) => {
                self.first_seq = old_first;
                self.anchor = old_anchor;
                return Err(e);
            }
        };
        if let Err(e) = tx.commit() {
            self.first_seq = old_first;
            self.anchor = old_anchor;
            return Err(e);
        }
        self.cp = Some(cp);
        if self.in_sync.is_none() {
            self.indexed_through = self.indexed_through.max(seg_of(new_first, self.seg_rows) * self.seg_rows);
        }
        self.shared.pruned.fetch_add(cut, Relaxed);
        // Give freed pages back to the filesystem (auto_vacuum = INCREMENTAL), bounded per step.
        let _ = self.conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES});"));
        self.update_db_bytes();
        Ok(cut == PRUNE_CHUNK || self.max_bytes > 0 && cut > 0)
    }

    /// If the next segment to index is the open one, rebuild its postings from
    /// the table and keep them in sync from now on.
    fn load_open_segment(&mut self) -> rusqlite::Result<bool> {
        let seg = self.indexed_through / self.seg_rows;
        let (first, last) = seg_bounds(seg, self.seg_rows);
        if self.head_seq >= last {
            return Ok(false);
        }
        let mut b = SegBuilder::new(seg, self.seg_rows);
        if self.head_seq >= first {
            b.load(&self.conn, first, self.head_seq)?;
        }
        self.generation += 1;
        if self.indexer.start(self.generation, b) {
            self.in_sync = Some(self.generation);
        } else {
            self.indexer_gone();
        }
        Ok(true)
    }

    /// Catch-up: build one complete segment from the table, or switch to
    /// in-memory indexing once only the open segment is left.
    fn index_step(&mut self) -> rusqlite::Result<()> {
        if self.load_open_segment()? {
            return Ok(());
        }
        let seg = self.indexed_through / self.seg_rows;
        let (first, last) = seg_bounds(seg, self.seg_rows);
        let mut b = SegBuilder::new(seg, self.seg_rows);
        b.load(&self.conn, first, last)?;
        let tx = self.conn.unchecked_transaction()?;
        b.write(&tx, self.seg_rows)?;
        tx.commit()?;
        self.indexed_through = last;
        Ok(())
    }

    /// Store the segments the indexer completed; on failure fall back to
    /// catching up from the table.
    fn store_sealed(&mut self) {
        let Some(current) = self.in_sync else { return };
        let sealed: Vec<SegBuilder> =
            self.indexer.take_sealed().into_iter().filter(|s| s.generation == current).map(|s| s.builder).collect();
        let Some(last) = sealed.last().map(|b| seg_bounds(b.seg, self.seg_rows).1) else { return };
        let res = self.conn.unchecked_transaction().and_then(|tx| {
            for b in sealed {
                b.write(&tx, self.seg_rows)?;
            }
            tx.commit()
        });
        match res {
            Ok(()) => self.indexed_through = last,
            Err(_) => {
                self.shared.write_errors.fetch_add(1, Relaxed);
                self.in_sync = None;
                self.indexer.reset();
                self.index_retry_at = Instant::now() + self.retry;
            }
        }
    }

    /// The indexer thread died (a bug): count it and index from the table
    /// on this thread instead, one segment per retry interval.
    fn indexer_gone(&mut self) {
        self.shared.write_errors.fetch_add(1, Relaxed);
        self.in_sync = None;
        self.index_retry_at = Instant::now() + self.retry;
    }

    fn finish(&mut self) {
        self.write_pending();
        self.indexer.barrier();
        self.store_sealed();
        if !self.pending.is_empty() {
            // Could not be written (disk still full): these rows are lost, count them.
            self.shared.dropped_degraded.fetch_add(self.pending.len() as u64, Relaxed);
            self.pending.clear();
            self.shared.buffered.store(0, Relaxed);
        } else if self.cp.map_or(0, |c| c.seq) < self.head_seq {
            let (seq, hash) = (self.head_seq, self.head_hash);
            let res = self.conn.unchecked_transaction().and_then(|tx| {
                self.insert_checkpoint(&tx, "shutdown", seq, &hash).and_then(|cp| tx.commit().map(|_| cp))
            });
            if let Ok(cp) = res {
                self.cp = Some(cp);
            }
        }
        if let Some(mut c) = self.ckpt.take() {
            c.stop();
        }
        self.update_db_bytes();
    }
}

enum SettingsError {
    Sql(rusqlite::Error),
    Audit(AuditError),
}

impl From<rusqlite::Error> for SettingsError {
    fn from(e: rusqlite::Error) -> Self {
        SettingsError::Sql(e)
    }
}

/// Reconcile the configured chain mode with the one the database was created
/// with (recorded in `meta`) and read the segment size.
fn chain_settings(
    conn: &Connection,
    cfg: &AuditConfig,
    hasher: ChainHasher,
    head_seq: u64,
    has_checkpoints: bool,
) -> Result<(ChainHasher, u64), SettingsError> {
    use rusqlite::types::Value as V;
    let path = cfg.path.display();
    let key_err = |m: String| SettingsError::Audit(AuditError::Key(m));
    let empty = head_seq == 0 && !has_checkpoints;
    let stored = match meta_get(conn, "chain")? {
        Some(V::Text(t)) => Some(t),
        None => None,
        Some(_) => return Err(key_err(format!("{path}: meta.chain is malformed (tampered?)"))),
    };
    let adopt = match stored.as_deref() {
        // A v1 trail (always unkeyed) or a brand-new database.
        None => {
            if !empty && hasher.is_keyed() {
                return Err(key_err(format!(
                    "{path} holds an unkeyed chain ({head_seq} records); a keyed chain needs a new database: \
                     move this one aside or remove audit.key_file"
                )));
            }
            true
        }
        Some(m) if m == hasher.mode() => {
            if let Some(id) = hasher.key_id() {
                let stored_id = match meta_get(conn, "key_id")? {
                    Some(V::Text(t)) => t,
                    _ => String::new(),
                };
                if stored_id != id {
                    return Err(key_err(format!(
                        "{path} was written under another key (key id {stored_id}); key_file {} has key id {id}",
                        cfg.key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                    )));
                }
            }
            false
        }
        Some(_) if empty => true,
        Some(CHAIN_HMAC) => {
            return Err(key_err(format!("{path} holds a keyed (HMAC) chain: set audit.key_file to its key")));
        }
        Some(CHAIN_SHA256) => {
            return Err(key_err(format!(
                "{path} holds an unkeyed chain ({head_seq} records); a keyed chain needs a new database: \
                 move this one aside or remove audit.key_file"
            )));
        }
        Some(other) => return Err(key_err(format!("{path}: unknown chain mode {other:?} in meta"))),
    };
    if adopt {
        meta_set(conn, "chain", &hasher.mode())?;
        match hasher.key_id() {
            Some(id) => meta_set(conn, "key_id", &id)?,
            None => {
                conn.execute("DELETE FROM meta WHERE key = 'key_id'", [])?;
            }
        }
    }
    let seg_rows = match meta_get(conn, "seg_rows")? {
        Some(V::Integer(n)) if n >= 16 => n as u64,
        _ => {
            meta_set(conn, "seg_rows", &(cfg.index_segment_rows as i64))?;
            cfg.index_segment_rows
        }
    };
    Ok((hasher, seg_rows))
}

/// The fields a checkpoint hash covers, in order.
pub(crate) fn checkpoint_fields<'a>(
    id: i64,
    ts: i64,
    reason: &'a str,
    seq: i64,
    hash: &'a [u8],
    first_seq: i64,
    anchor: &'a [u8],
) -> [Field<'a>; 7] {
    [
        Field::Int(id),
        Field::Int(ts),
        Field::Text(reason.as_bytes()),
        Field::Int(seq),
        Field::Blob(hash),
        Field::Int(first_seq),
        Field::Blob(anchor),
    ]
}

#[cfg(test)]
mod read_open_filter {
    use super::*;
    use crate::config::ReadOpens;

    fn filter(read_opens: ReadOpens) -> EventFilter {
        EventFilter {
            include: vec![],
            exclude: vec![],
            skip_prefixes: vec![],
            read_opens,
            sensitive_prefixes: vec!["/etc/".into()],
        }
    }

    fn open(path: &str, flags: &[&str]) -> Value {
        serde_json::json!({"type": "open", "file": {"path": path, "flags": flags}})
    }

    impl EventFilter {
        fn keep_json(&self, v: &Value) -> bool {
            self.keep(&EventColumns::from_json(v))
        }
    }

    #[test]
    fn sensitive_keeps_reads_under_the_prefixes_and_every_write() {
        let f = filter(ReadOpens::Sensitive);
        assert!(f.keep_json(&open("/etc/shadow", &["O_RDONLY"])));
        assert!(!f.keep_json(&open("/usr/share/doc/x", &["O_RDONLY", "O_CLOEXEC"])));
        assert!(f.keep_json(&open("/usr/share/doc/x", &["O_WRONLY", "O_TRUNC"])));
        assert!(f.keep_json(&open("/tmp/new", &["O_RDONLY", "O_CREAT"])), "O_CREAT with O_RDONLY still creates");
        assert!(f.keep_json(&serde_json::json!({"type": "unlink", "file": {"path": "/tmp/x"}})));
    }

    #[test]
    fn all_and_none() {
        assert!(filter(ReadOpens::All).keep_json(&open("/usr/lib/x", &["O_RDONLY"])));
        assert!(!filter(ReadOpens::None).keep_json(&open("/etc/shadow", &["O_RDONLY"])));
        assert!(filter(ReadOpens::None).keep_json(&open("/etc/shadow", &["O_RDWR"])));
    }
}
