//! The baseline database (SQLite, WAL): service baselines as JSON rows,
//! the anomalies reported (so `accept ID` can find what an id means), and
//! an overrides queue through which `sensor baseline reset|accept` reach a
//! running sensor: it reads (and clears) the queue on every persist, skips
//! writing what was reset, and applies the rest to its memory.
//!
//! The running sensor writes from its own thread ([`Writer`]); the pipeline
//! only serialises changed services and hands them over without blocking.

use crate::{Anomaly, Global, Kind, Override, Service};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError};
use std::time::Duration;

const SCHEMA_VERSION: &str = "1";

#[derive(Debug)]
pub enum StoreError {
    /// Not a baseline database we can read (corrupt, or another schema).
    Corrupt(String),
    Io(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Corrupt(m) | StoreError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

/// Renames a bad database to `PATH.corrupt-SECS` (kept for inspection).
pub fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = PathBuf::from(format!("{}.corrupt-{secs}", path.display()));
    std::fs::rename(path, &aside)?;
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    Ok(aside)
}

pub struct Store {
    conn: Connection,
    pub path: PathBuf,
}

/// A reported anomaly as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnomalyRow {
    pub id: String,
    pub kind: String,
    pub service: String,
    pub subject: String,
    pub direction: Option<String>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub count: u64,
    pub message: String,
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{}: not a readable baseline database: {e}", path.display()))
}

impl Store {
    /// Opens (creating) the database. A file that is not a baseline
    /// database is [`StoreError::Corrupt`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(|e| corrupt(path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| corrupt(path, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| corrupt(path, e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS services (name TEXT PRIMARY KEY, last_ms INTEGER NOT NULL, baseline TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS services_last ON services(last_ms);
             CREATE TABLE IF NOT EXISTS anomalies (id TEXT PRIMARY KEY, kind TEXT NOT NULL, service TEXT NOT NULL,
                 subject TEXT NOT NULL, direction TEXT, first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL,
                 count INTEGER NOT NULL, message TEXT NOT NULL, record TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS anomalies_last ON anomalies(last_ms);
             CREATE TABLE IF NOT EXISTS overrides (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL,
                 service TEXT, anomaly_id TEXT, at_ms INTEGER NOT NULL);",
        )
        .map_err(|e| corrupt(path, e))?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| corrupt(path, e))?;
        if check != "ok" {
            return Err(corrupt(path, check));
        }
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(path, e))?;
        match version.as_deref() {
            None => {
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema', ?1)", [SCHEMA_VERSION])
                    .map_err(|e| corrupt(path, e))?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v) => return Err(corrupt(path, format!("schema version {v}, this sensor reads {SCHEMA_VERSION}"))),
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// Opens the database; a corrupt one is moved aside (`PATH.corrupt-SECS`)
    /// and a fresh one created. Returns the store and, when that happened,
    /// a message saying so.
    pub fn open_or_fresh(path: &Path) -> Result<(Store, Option<String>), StoreError> {
        match Store::open(path) {
            Ok(s) => Ok((s, None)),
            Err(StoreError::Corrupt(why)) => {
                let aside =
                    move_aside(path).map_err(|e| StoreError::Io(format!("{why}; and cannot move it aside: {e}")))?;
                let s = Store::open(path)?;
                Ok((s, Some(format!("{why}; moved it to {} and started with empty baselines", aside.display()))))
            }
            Err(e) => Err(e),
        }
    }

    /// The detector-wide state and up to `max` services, least recently seen first.
    pub fn load(&self, max: usize) -> Result<(Global, Vec<(String, Service)>), StoreError> {
        let p = &self.path;
        let global: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'global'", [], |r| r.get(0))
            .optional()
            .map_err(|e| corrupt(p, e))?;
        let global = match global {
            Some(g) => serde_json::from_str(&g).map_err(|e| corrupt(p, format!("meta.global: {e}")))?,
            None => Global::default(),
        };
        let mut stmt = self
            .conn
            .prepare("SELECT name, baseline FROM (SELECT name, last_ms, baseline FROM services ORDER BY last_ms DESC LIMIT ?1) ORDER BY last_ms")
            .map_err(|e| corrupt(p, e))?;
        let rows = stmt
            .query_map([max as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| corrupt(p, e))?;
        let mut out = Vec::new();
        for r in rows {
            let (name, json) = r.map_err(|e| corrupt(p, e))?;
            let s: Service = serde_json::from_str(&json).map_err(|e| corrupt(p, format!("service {name}: {e}")))?;
            out.push((name, s));
        }
        Ok((global, out))
    }

    fn resolve(&self, id: &str) -> rusqlite::Result<Option<AnomalyRow>> {
        self.conn
            .query_row(
                "SELECT id, kind, service, subject, direction, first_ms, last_ms, count, message FROM anomalies WHERE id = ?1",
                [id],
                row_to_anomaly,
            )
            .optional()
    }

    /// Reads and clears the overrides queue, writes `rows` (except reset
    /// services, and with accepts applied), the global state, prunes to
    /// `max_services` rows. Returns the overrides for the detector.
    pub fn persist(
        &mut self,
        rows: Vec<(String, u64, String)>,
        global: &Global,
        max_services: usize,
    ) -> rusqlite::Result<Vec<Override>> {
        let tx = self.conn.transaction()?;
        let pending: Vec<(i64, String, Option<String>, Option<String>)> = {
            let mut stmt = tx.prepare("SELECT seq, op, service, anomaly_id FROM overrides ORDER BY seq")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<Result<_, _>>()?
        };
        let mut overrides = Vec::new();
        for (_, op, service, id) in &pending {
            match (op.as_str(), id) {
                ("reset", _) => overrides.push(Override::Reset { service: service.clone() }),
                ("accept", Some(id)) => {
                    let row = tx
                        .query_row(
                            "SELECT id, kind, service, subject, direction, first_ms, last_ms, count, message FROM anomalies WHERE id = ?1",
                            [id],
                            row_to_anomaly,
                        )
                        .optional()?;
                    if let Some(a) = row
                        && let Some(kind) = Kind::parse(&a.kind)
                    {
                        overrides.push(Override::Accept {
                            kind,
                            service: a.service,
                            subject: a.subject,
                            direction: a.direction,
                        });
                    }
                }
                _ => {}
            }
        }
        let reset_all = overrides.contains(&Override::Reset { service: None });
        let reset: HashSet<&str> = overrides
            .iter()
            .filter_map(|o| match o {
                Override::Reset { service: Some(s) } => Some(s.as_str()),
                _ => None,
            })
            .collect();
        if !reset_all {
            let mut rows: BTreeMap<String, (u64, String)> =
                rows.into_iter().filter(|(n, _, _)| !reset.contains(n.as_str())).map(|(n, t, j)| (n, (t, j))).collect();
            // accepts made since these rows were taken
            for o in &overrides {
                if let Override::Accept { kind, service, subject, direction } = o {
                    let mut parsed: BTreeMap<String, Service> = BTreeMap::new();
                    for name in [service, subject] {
                        if let Some((_, j)) = rows.get(name)
                            && let Ok(s) = serde_json::from_str(j)
                        {
                            parsed.insert(name.clone(), s);
                        }
                    }
                    crate::accept(&mut parsed, *kind, service, subject, direction.as_deref());
                    for (name, s) in parsed {
                        if let (Some(r), Ok(j)) = (rows.get_mut(&name), serde_json::to_string(&s)) {
                            r.1 = j;
                        }
                    }
                }
            }
            {
                let mut up = tx.prepare_cached(
                    "INSERT INTO services (name, last_ms, baseline) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET last_ms = excluded.last_ms, baseline = excluded.baseline",
                )?;
                for (name, (last, json)) in &rows {
                    up.execute(params![name, *last as i64, json])?;
                }
            }
            for s in &reset {
                tx.execute("DELETE FROM services WHERE name = ?1", [s])?;
            }
            let g = serde_json::to_string(global).unwrap_or_else(|_| "{}".into());
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('global', ?1)", [g])?;
            tx.execute(
                "DELETE FROM services WHERE name NOT IN (SELECT name FROM services ORDER BY last_ms DESC LIMIT ?1)",
                [max_services as i64],
            )?;
        } else {
            tx.execute("DELETE FROM services", [])?;
            tx.execute("DELETE FROM meta WHERE key = 'global'", [])?;
        }
        // the anomalies table is bounded too: the newest 10000
        tx.execute(
            "DELETE FROM anomalies WHERE id NOT IN (SELECT id FROM anomalies ORDER BY last_ms DESC LIMIT 10000)",
            [],
        )?;
        if let Some((last, ..)) = pending.last() {
            tx.execute("DELETE FROM overrides WHERE seq <= ?1", [last])?;
        }
        tx.commit()?;
        Ok(overrides)
    }

    pub fn record_anomaly(&self, a: &Anomaly, now_ms: u64) -> rusqlite::Result<()> {
        let record = serde_json::to_string(a).unwrap_or_default();
        self.conn.execute(
            "INSERT INTO anomalies (id, kind, service, subject, direction, first_ms, last_ms, count, message, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET last_ms = excluded.last_ms, count = count + 1,
                 message = excluded.message, record = excluded.record",
            params![a.id, a.kind.name(), a.service, a.subject, a.direction, now_ms as i64, a.message, record],
        )?;
        Ok(())
    }

    // ---- the CLI's side ----

    pub fn services(&self, name: Option<&str>) -> rusqlite::Result<Vec<(String, Service)>> {
        let mut stmt =
            self.conn.prepare("SELECT name, baseline FROM services WHERE ?1 IS NULL OR name = ?1 ORDER BY name")?;
        let rows = stmt.query_map([name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (n, j) = r?;
            if let Ok(s) = serde_json::from_str(&j) {
                out.push((n, s));
            }
        }
        Ok(out)
    }

    pub fn global(&self) -> rusqlite::Result<Global> {
        let g: Option<String> =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'global'", [], |r| r.get(0)).optional()?;
        Ok(g.and_then(|g| serde_json::from_str(&g).ok()).unwrap_or_default())
    }

    pub fn anomalies(&self, service: Option<&str>, limit: usize) -> rusqlite::Result<Vec<AnomalyRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, service, subject, direction, first_ms, last_ms, count, message FROM anomalies
             WHERE ?1 IS NULL OR service = ?1 ORDER BY last_ms DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![service, limit as i64], row_to_anomaly)?;
        rows.collect()
    }

    pub fn pending_overrides(&self) -> rusqlite::Result<u64> {
        self.conn.query_row("SELECT COUNT(*) FROM overrides", [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
    }

    /// Deletes the stored baselines (one service or all) and queues the
    /// reset for a running sensor. Returns the rows deleted.
    pub fn reset(&mut self, service: Option<&str>, now_ms: u64) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let n = match service {
            Some(s) => tx.execute("DELETE FROM services WHERE name = ?1", [s])?,
            None => {
                tx.execute("DELETE FROM meta WHERE key = 'global'", [])?;
                tx.execute("DELETE FROM services", [])?
            }
        };
        tx.execute(
            "INSERT INTO overrides (op, service, at_ms) VALUES ('reset', ?1, ?2)",
            params![service, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Learns anomaly `id` as normal in the stored baseline and queues the
    /// accept for a running sensor. Unknown id: None.
    pub fn accept(&mut self, id: &str, now_ms: u64) -> rusqlite::Result<Option<AnomalyRow>> {
        let Some(a) = self.resolve(id)? else { return Ok(None) };
        let Some(kind) = Kind::parse(&a.kind) else { return Ok(None) };
        let tx = self.conn.transaction()?;
        let mut parsed: BTreeMap<String, Service> = BTreeMap::new();
        for name in [&a.service, &a.subject] {
            let j: Option<String> =
                tx.query_row("SELECT baseline FROM services WHERE name = ?1", [name], |r| r.get(0)).optional()?;
            if let Some(s) = j.and_then(|j| serde_json::from_str(&j).ok()) {
                parsed.insert(name.clone(), s);
            }
        }
        crate::accept(&mut parsed, kind, &a.service, &a.subject, a.direction.as_deref());
        for (name, s) in &parsed {
            let j = serde_json::to_string(s).unwrap_or_default();
            tx.execute("UPDATE services SET baseline = ?2 WHERE name = ?1", params![name, j])?;
        }
        tx.execute(
            "INSERT INTO overrides (op, anomaly_id, at_ms) VALUES ('accept', ?1, ?2)",
            params![a.id, now_ms as i64],
        )?;
        tx.commit()?;
        Ok(Some(a))
    }
}

fn row_to_anomaly(r: &rusqlite::Row) -> rusqlite::Result<AnomalyRow> {
    Ok(AnomalyRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        service: r.get(2)?,
        subject: r.get(3)?,
        direction: r.get(4)?,
        first_ms: r.get::<_, i64>(5)? as u64,
        last_ms: r.get::<_, i64>(6)? as u64,
        count: r.get::<_, i64>(7)? as u64,
        message: r.get(8)?,
    })
}

pub enum Msg {
    Anomaly(Box<Anomaly>, u64),
    Persist { rows: Vec<(String, u64, String)>, global: Global, ack: Option<Sender<()>> },
}

/// The store on its own thread (rusqlite's Connection is not Sync, and
/// the pipeline must not wait on the disk).
pub struct Writer {
    tx: Option<SyncSender<Msg>>,
    overrides: Receiver<Override>,
    handle: Option<std::thread::JoinHandle<()>>,
    pub errors: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
}

impl Writer {
    pub fn spawn(mut store: Store, max_services: usize) -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(1024);
        let (otx, orx) = std::sync::mpsc::channel();
        let errors = Arc::new(AtomicU64::new(0));
        let errs = errors.clone();
        let handle = std::thread::Builder::new().name("baseline-writer".into()).spawn(move || {
            let mut logged = false;
            for msg in rx {
                let r = match msg {
                    Msg::Anomaly(a, now) => store.record_anomaly(&a, now),
                    Msg::Persist { rows, global, ack } => {
                        let r = store.persist(rows, &global, max_services);
                        let r = r.map(|o| {
                            for o in o {
                                let _ = otx.send(o);
                            }
                        });
                        if let Some(a) = ack {
                            let _ = a.send(());
                        }
                        r
                    }
                };
                if let Err(e) = r {
                    errs.fetch_add(1, Ordering::Relaxed);
                    if !logged {
                        tracing::error!("baseline database {}: {e}", store.path.display());
                        logged = true;
                    }
                } else {
                    logged = false;
                }
            }
        })?;
        Ok(Writer { tx: Some(tx), overrides: orx, handle: Some(handle), errors, dropped: Arc::new(AtomicU64::new(0)) })
    }

    /// Never blocks: a full queue drops (counted).
    pub fn send(&self, m: Msg) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(m)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn overrides(&self) -> Vec<Override> {
        self.overrides.try_iter().collect()
    }

    /// The final persist: waits for it (at most `timeout`), then stops the thread.
    pub fn finish(mut self, rows: Vec<(String, u64, String)>, global: Global, timeout: Duration) -> bool {
        let (ack, done) = std::sync::mpsc::channel();
        let ok = match &self.tx {
            Some(tx) => {
                tx.send(Msg::Persist { rows, global, ack: Some(ack) }).is_ok() && done.recv_timeout(timeout).is_ok()
            }
            None => false,
        };
        self.tx.take();
        if ok && let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        ok
    }
}
