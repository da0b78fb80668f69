//! Durable outbox in SQLite. One `alerts` row per alert and one `deliveries`
//! row per (alert, sink). The pipeline's writer thread owns the only writing
//! connection; the CLI opens its own (WAL lets both coexist).
//!
//! WAL with `synchronous = NORMAL`: a committed alert survives the process
//! being killed (it is in the WAL file), though not a power cut between
//! checkpoints; that trade buys ~100x cheaper commits.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::alert::{Alert, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending = 0,
    Delivered = 1,
    Dead = 2,
    /// Held back by the sink's rate limit (and covered by a summary).
    Suppressed = 3,
}

impl DeliveryState {
    pub fn from_i64(v: i64) -> DeliveryState {
        match v {
            1 => DeliveryState::Delivered,
            2 => DeliveryState::Dead,
            3 => DeliveryState::Suppressed,
            _ => DeliveryState::Pending,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Suppressed => "suppressed",
        }
    }
}

/// One delivery row as shown by `sensor alerts list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub sink: String,
    pub state: &'static str,
    pub attempts: u32,
    pub rule: String,
    pub severity: Severity,
    pub created: String,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Pending,
    Failed,
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub struct Outbox {
    conn: Connection,
}

impl Outbox {
    /// Opens (creating if needed) the outbox for the pipeline.
    pub fn open(path: &Path) -> rusqlite::Result<Outbox> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// Opens an existing outbox (CLI): never creates a new file.
    pub fn open_existing(path: &Path) -> rusqlite::Result<Outbox> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> rusqlite::Result<Outbox> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Keep the WAL file from staying huge after a burst.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS alerts(
                seq INTEGER PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                rule TEXT NOT NULL,
                severity INTEGER NOT NULL,
                created_ms INTEGER NOT NULL,
                agg_open INTEGER NOT NULL DEFAULT 0,
                only_sink TEXT,
                body TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS deliveries(
                sink TEXT NOT NULL,
                seq INTEGER NOT NULL,
                state INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_ms INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                updated_ms INTEGER NOT NULL,
                PRIMARY KEY(sink, seq)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(sink, seq) WHERE state = 0;
            CREATE INDEX IF NOT EXISTS deliveries_seq ON deliveries(seq);
            CREATE INDEX IF NOT EXISTS alerts_agg ON alerts(agg_open) WHERE agg_open = 1;",
        )?;
        Ok(Outbox { conn })
    }

    /// Moves WAL checkpoints off the writer: the writer's commits then only
    /// append to the WAL, and `run_checkpointer` copies pages back (and pays
    /// the fsyncs) on its own thread without blocking it.
    pub fn disable_autocheckpoint(&self) -> rusqlite::Result<()> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // Bigger page cache: the batch transactions touch the same index pages.
        self.conn.pragma_update(None, "cache_size", -32768)
    }

    /// Background checkpoint loop; returns when `stop` disconnects.
    pub fn run_checkpointer(path: &Path, stop: std::sync::mpsc::Receiver<()>) {
        let Ok(conn) = Connection::open(path) else {
            return;
        };
        let _ = conn.busy_timeout(Duration::from_millis(100));
        loop {
            let done = matches!(
                stop.recv_timeout(Duration::from_millis(250)),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            );
            // PASSIVE never blocks the writer; busy readers just delay it.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if done {
                return;
            }
        }
    }

    /// Checkpoint from the writing connection: completes and resets the WAL.
    pub fn checkpoint_truncate(&self) -> rusqlite::Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    }

    pub fn begin(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.conn.transaction()
    }

    /// Changes whenever another connection (the CLI) commits.
    pub fn data_version(&self) -> rusqlite::Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))
    }

    /// Inserts an alert; None if an alert with this id is already stored
    /// (re-submitting the same idempotency key is a no-op).
    pub fn insert_alert(
        tx: &rusqlite::Transaction<'_>,
        alert: &Alert,
        agg_open: bool,
        only_sink: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        let body = serde_json::to_string(alert).unwrap_or_default();
        let n = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO alerts(id, rule, severity, created_ms, agg_open, only_sink, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                alert.id,
                alert.rule,
                alert.severity.as_i64(),
                now_ms(),
                agg_open as i64,
                only_sink,
                body
            ])?;
        Ok((n == 1).then(|| tx.last_insert_rowid()))
    }

    pub fn update_alert_body(
        tx: &rusqlite::Transaction<'_>,
        seq: i64,
        alert: &Alert,
        agg_open: bool,
    ) -> rusqlite::Result<()> {
        let body = serde_json::to_string(alert).unwrap_or_default();
        tx.prepare_cached("UPDATE alerts SET body = ?2, severity = ?3, agg_open = ?4 WHERE seq = ?1")?
            .execute(params![seq, body, alert.severity.as_i64(), agg_open as i64])?;
        Ok(())
    }

    pub fn insert_delivery(tx: &rusqlite::Transaction<'_>, sink: &str, seq: i64) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO deliveries(sink, seq, state, attempts, next_ms, updated_ms)
             VALUES (?1, ?2, 0, 0, 0, ?3)",
        )?
        .execute(params![sink, seq, now_ms()])?;
        Ok(())
    }

    /// Records the outcome of a delivery attempt.
    pub fn mark(
        tx: &rusqlite::Transaction<'_>,
        sink: &str,
        seq: i64,
        state: DeliveryState,
        attempts: u32,
        error: Option<&str>,
        next_ms: i64,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "UPDATE deliveries SET state = ?3, attempts = ?4, last_error = COALESCE(?5, last_error),
             next_ms = ?6, updated_ms = ?7 WHERE sink = ?1 AND seq = ?2",
        )?
        .execute(params![sink, seq, state as i64, attempts as i64, error, next_ms, now_ms()])?;
        Ok(())
    }

    /// Pending deliveries of `sink` after `after_seq`, oldest first, skipping
    /// those the worker already holds.
    pub fn fetch_pending(
        &self,
        sink: &str,
        after_seq: i64,
        limit: usize,
        exclude: &HashSet<i64>,
    ) -> rusqlite::Result<Vec<(i64, u32, Alert)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.seq, d.attempts, a.body FROM deliveries d JOIN alerts a ON a.seq = d.seq
             WHERE d.sink = ?1 AND d.state = 0 AND d.seq > ?2 ORDER BY d.seq LIMIT ?3",
        )?;
        let mut out = Vec::new();
        let mut rows = stmt.query(params![sink, after_seq, (limit + exclude.len()) as i64])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            if exclude.contains(&seq) {
                continue;
            }
            let attempts: i64 = r.get(1)?;
            let body: String = r.get(2)?;
            match serde_json::from_str::<Alert>(&body) {
                Ok(a) => out.push((seq, attempts.max(0) as u32, a)),
                // A row we cannot parse can never be delivered: park it so it
                // does not wedge the sink, and leave it visible to the CLI.
                Err(_) => {
                    self.conn
                        .prepare_cached(
                            "UPDATE deliveries SET state = 2, last_error = 'unreadable alert body'
                             WHERE sink = ?1 AND seq = ?2",
                        )?
                        .execute(params![sink, seq])?;
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Aggregations that were still open when the process stopped.
    pub fn open_aggregations(&self) -> rusqlite::Result<Vec<(i64, Alert)>> {
        let mut stmt = self.conn.prepare("SELECT seq, body FROM alerts WHERE agg_open = 1")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (seq, body) = r?;
            if let Ok(a) = serde_json::from_str(&body) {
                out.push((seq, a));
            }
        }
        Ok(out)
    }

    /// Dead-letters pending deliveries older than `max_age`; prunes delivered
    /// ones older than `retention` (and alerts left with no deliveries).
    pub fn maintain(&mut self, max_age: Duration, retention: Duration) -> rusqlite::Result<usize> {
        let now = now_ms();
        let tx = self.conn.transaction()?;
        let expired = tx.execute(
            "UPDATE deliveries SET state = 2, last_error = 'expired: older than max_pending_age',
             updated_ms = ?2
             WHERE state = 0 AND seq IN (SELECT seq FROM alerts WHERE created_ms < ?1)",
            params![now - max_age.as_millis() as i64, now],
        )?;
        tx.execute(
            "DELETE FROM deliveries WHERE state = 1 AND updated_ms < ?1",
            params![now - retention.as_millis() as i64],
        )?;
        tx.execute(
            "DELETE FROM alerts WHERE agg_open = 0 AND created_ms < ?1
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = alerts.seq)",
            params![now - retention.as_millis() as i64],
        )?;
        tx.commit()?;
        Ok(expired)
    }

    pub fn list(&self, filter: ListFilter, limit: usize) -> rusqlite::Result<Vec<DeliveryRow>> {
        let cond = match filter {
            ListFilter::All => "1",
            ListFilter::Pending => "d.state = 0",
            ListFilter::Failed => "d.state = 2",
        };
        let sql = format!(
            "SELECT a.id, d.sink, d.state, d.attempts, a.rule, a.severity, a.created_ms, d.last_error
             FROM deliveries d JOIN alerts a ON a.seq = d.seq WHERE {cond}
             ORDER BY d.seq DESC, d.sink LIMIT ?1"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([limit as i64], |r| {
            let ms: i64 = r.get(6)?;
            Ok(DeliveryRow {
                id: r.get(0)?,
                sink: r.get(1)?,
                state: DeliveryState::from_i64(r.get(2)?).as_str(),
                attempts: r.get::<_, i64>(3)?.max(0) as u32,
                rule: r.get(4)?,
                severity: Severity::from_i64(r.get(5)?),
                created: chrono::DateTime::from_timestamp_millis(ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                last_error: r.get(7)?,
            })
        })?;
        rows.collect()
    }

    /// Puts dead-lettered (and, for an explicit id, rate-limit-suppressed)
    /// deliveries back to pending with a fresh attempt budget.
    pub fn retry(&mut self, id: Option<&str>) -> rusqlite::Result<usize> {
        let now = now_ms();
        match id {
            Some(id) => {
                let seq: Option<i64> =
                    self.conn.query_row("SELECT seq FROM alerts WHERE id = ?1", [id], |r| r.get(0)).optional()?;
                let Some(seq) = seq else { return Ok(0) };
                self.conn.execute(
                    "UPDATE deliveries SET state = 0, attempts = 0, next_ms = 0, updated_ms = ?2
                     WHERE seq = ?1 AND state IN (2, 3)",
                    params![seq, now],
                )
            }
            None => self.conn.execute(
                "UPDATE deliveries SET state = 0, attempts = 0, next_ms = 0, updated_ms = ?1
                 WHERE state = 2",
                params![now],
            ),
        }
    }

    pub fn alert_exists(&self, id: &str) -> rusqlite::Result<bool> {
        Ok(self.conn.query_row("SELECT 1 FROM alerts WHERE id = ?1", [id], |_| Ok(())).optional()?.is_some())
    }

    /// Counts per state (for tests and `alerts list` footers).
    pub fn counts(&self) -> rusqlite::Result<[u64; 4]> {
        let mut out = [0u64; 4];
        let mut stmt = self.conn.prepare("SELECT state, COUNT(*) FROM deliveries GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for r in rows {
            let (s, n) = r?;
            if (0..4).contains(&s) {
                out[s as usize] = n.max(0) as u64;
            }
        }
        Ok(out)
    }
}
