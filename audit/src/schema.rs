//! Opening the database, pragmas and versioned migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::AuditError;
use crate::error::sql_err;

/// Current schema version (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 3;
/// The oldest version readers understand without a migration (v3 only added postings).
const MIN_READABLE_VERSION: i64 = 2;
/// `PRAGMA application_id` marks the file as ours ("SnAu").
pub(crate) const APPLICATION_ID: i64 = 0x536e_4175;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE records (
    seq       INTEGER PRIMARY KEY,  -- chain position, contiguous from the retention anchor
    ts_ns     INTEGER NOT NULL,     -- event time, ns since the epoch (UTC)
    kind      INTEGER NOT NULL,     -- 0 event, 1 alert, 2 store marker
    type      TEXT,
    pid       INTEGER,
    uid       INTEGER,
    exe       TEXT,
    container TEXT,
    path      TEXT,
    daddr     TEXT,
    dport     INTEGER,
    rule      TEXT,
    severity  INTEGER,              -- 0 info .. 4 critical (alerts only)
    json      TEXT NOT NULL,        -- the full event/alert, same schema as --events-out
    hash      BLOB NOT NULL         -- chain hash, see record::chain_hash
);
-- Single-column indexes: SQLite appends the rowid (= seq), so `col = ? ORDER BY seq DESC`
-- needs no sort. Columns most events lack get partial indexes to keep inserts cheap.
CREATE INDEX records_ts        ON records(ts_ns);
CREATE INDEX records_type      ON records(type);
CREATE INDEX records_pid       ON records(pid);
CREATE INDEX records_uid       ON records(uid);
CREATE INDEX records_exe       ON records(exe);
CREATE INDEX records_container ON records(container) WHERE container IS NOT NULL;
CREATE INDEX records_path      ON records(path)      WHERE path IS NOT NULL;
CREATE INDEX records_daddr     ON records(daddr)     WHERE daddr IS NOT NULL;
CREATE INDEX records_dport     ON records(dport)     WHERE dport IS NOT NULL;
CREATE INDEX records_rule      ON records(rule)      WHERE rule IS NOT NULL;
CREATE INDEX records_severity  ON records(severity)  WHERE severity IS NOT NULL;

CREATE TABLE checkpoints (
    id        INTEGER PRIMARY KEY,
    ts_ns     INTEGER NOT NULL,
    reason    TEXT NOT NULL,        -- periodic | prune | shutdown
    seq       INTEGER NOT NULL,     -- chain head when written (0 = empty)
    hash      BLOB NOT NULL,        -- chain hash at seq
    first_seq INTEGER NOT NULL,     -- first retained record
    anchor    BLOB NOT NULL,        -- chain hash just before first_seq
    prev      BLOB NOT NULL,        -- cp_hash of the previous checkpoint
    cp_hash   BLOB NOT NULL
);

-- Chain head, updated in the same transaction as every batch: detects tail truncation
-- and rows appended behind the writer's back.
CREATE TABLE head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO head (id, seq, hash) VALUES (1, 0, zeroblob(32));
"#,
    // v2: no secondary B-tree indexes on `records` (each insert used to update 11
    // of them at random pages); per-segment postings instead, see `index.rs`.
    // Settings the chain depends on (keyed or not, segment size) live in `meta`.
    r#"
DROP INDEX IF EXISTS records_ts;
DROP INDEX IF EXISTS records_type;
DROP INDEX IF EXISTS records_pid;
DROP INDEX IF EXISTS records_uid;
DROP INDEX IF EXISTS records_exe;
DROP INDEX IF EXISTS records_container;
DROP INDEX IF EXISTS records_path;
DROP INDEX IF EXISTS records_daddr;
DROP INDEX IF EXISTS records_dport;
DROP INDEX IF EXISTS records_rule;
DROP INDEX IF EXISTS records_severity;

CREATE TABLE segments (
    seg       INTEGER PRIMARY KEY,  -- records first_seq..=last_seq, (seg * rows_per_segment + 1)..
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    rows      INTEGER NOT NULL,     -- records present when the segment was indexed
    min_ts    INTEGER NOT NULL,
    max_ts    INTEGER NOT NULL,
    zones     BLOB NOT NULL         -- (min_ts, max_ts) little-endian i64 pairs per 1024 records
);

CREATE TABLE postings (
    seg  INTEGER NOT NULL,
    col  INTEGER NOT NULL,          -- 0 type, 1 pid, 2 uid, 3 exe, 4 container, 5 path, 6 daddr, 7 dport, 8 rule, 9 severity
    val  NOT NULL,                  -- the column value (integer or text)
    seqs BLOB NOT NULL,             -- delta-LEB128 offsets from the segment's first_seq
    PRIMARY KEY (seg, col, val)
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,         -- chain (sha256 | hmac-sha256), key_id, seg_rows
    value NOT NULL
);
"#,
    // v3: postings of `path` and `exe` reversed (cols 11 and 12, see `index.rs`)
    // so globs with a leading wildcard are range seeks. Segments already stored
    // do not have them; readers use the plain glob there.
    // Also a trigram map per segment of the distinct path and exe values, for
    // globs with wildcards at both ends; segments without one are scanned.
    r#"
INSERT OR REPLACE INTO meta (key, value)
    SELECT 'suffix_postings_from', coalesce(max(seg) + 1, 0) FROM segments;
CREATE TABLE grams (
    seg  INTEGER NOT NULL,
    col  INTEGER NOT NULL,          -- 3 exe, 5 path
    bits BLOB NOT NULL,             -- 65536-bit map of the trigrams of the segment's distinct values
    PRIMARY KEY (seg, col)
) WITHOUT ROWID;
"#,
];

/// Reads `application_id` / `user_version`; `allow_empty` accepts a brand-new file.
fn check_identity(conn: &Connection, path: &Path, allow_empty: bool) -> Result<i64, AuditError> {
    let err = sql_err(path);
    let app: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(&err)?;
    let ver: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(&err)?;
    if app == 0 && ver == 0 {
        let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(&err)?;
        if objects == 0 && allow_empty {
            return Ok(0);
        }
        return Err(AuditError::NotAuditDb {
            path: path.to_path_buf(),
            detail: if objects == 0 { "empty database".into() } else { "it holds other tables".into() },
        });
    }
    if app != APPLICATION_ID {
        return Err(AuditError::NotAuditDb { path: path.to_path_buf(), detail: format!("application_id {app:#x}") });
    }
    if ver > SCHEMA_VERSION {
        return Err(AuditError::NewerSchema { path: path.to_path_buf(), found: ver, supported: SCHEMA_VERSION });
    }
    Ok(ver)
}

/// Open (creating if needed) the database for the single writer and migrate it.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, AuditError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::Io {
            what: "creating directory",
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let existed = path.exists();
    let err = sql_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    if !existed {
        // Command lines and paths are sensitive: owner-only, set before the WAL
        // and shm files exist because SQLite copies the main file's mode to them.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
    let ver = check_identity(&conn, path, true)?;
    // Only takes effect before the first table exists; lets retention shrink the file.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(&err)?;
    if ver == 0 {
        // Likewise only for a new file: fewer, fuller pages per appended record.
        conn.pragma_update(None, "page_size", 8192).map_err(&err)?;
    }
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(&err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("cannot switch to WAL mode (got {mode})"),
        });
    }
    // NORMAL in WAL mode: a committed batch survives a process crash (kill -9);
    // only an OS crash can lose the last batches. Checkpoints (and their fsyncs,
    // which used to take about a third of the writer's wall time) run on a
    // separate connection and thread (see `store::Checkpointer`); the 32 MiB
    // autocheckpoint below only applies if that thread could not be started.
    // A generous journal_size_limit avoids truncating and regrowing the WAL.
    // mmap makes B-tree page reads memcpy-free.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -131072;
         PRAGMA temp_store = MEMORY;
         PRAGMA journal_size_limit = 268435456;
         PRAGMA wal_autocheckpoint = 8192;
         PRAGMA mmap_size = 268435456;",
    )
    .map_err(&err)?;
    migrate(&conn, path, ver)?;
    Ok(conn)
}

/// Read a `meta` value.
pub(crate) fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<rusqlite::types::Value>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

pub(crate) fn meta_set(conn: &Connection, key: &str, value: &dyn rusqlite::ToSql) -> rusqlite::Result<()> {
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", rusqlite::params![key, value]).map(|_| ())
}

fn migrate(conn: &Connection, path: &Path, from: i64) -> Result<(), AuditError> {
    let err = sql_err(path);
    for v in from..SCHEMA_VERSION {
        let tx = conn.unchecked_transaction().map_err(&err)?;
        tx.execute_batch(MIGRATIONS[v as usize]).map_err(&err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(&err)?;
        tx.pragma_update(None, "user_version", v + 1).map_err(&err)?;
        tx.commit().map_err(&err)?;
    }
    Ok(())
}

/// A second connection used only to checkpoint the WAL concurrently with the writer.
pub(crate) fn open_checkpointer(path: &Path) -> Result<Connection, AuditError> {
    let err = sql_err(path);
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -2048;")
        .map_err(&err)?;
    Ok(conn)
}

/// Open an existing database for reading. Never creates or migrates anything.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, AuditError> {
    if !path.exists() {
        return Err(AuditError::Missing(path.to_path_buf()));
    }
    let err = sql_err(path);
    // Read-write (without create) so a reader can open a WAL database whose -shm
    // file does not exist yet; query_only guarantees it writes nothing.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .or_else(|_| {
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        })
        .map_err(&err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(&err)?;
    conn.pragma_update(None, "query_only", true).map_err(&err)?;
    let ver = check_identity(&conn, path, false)?;
    if ver < MIN_READABLE_VERSION {
        return Err(AuditError::OlderSchema { path: path.to_path_buf(), found: ver, supported: SCHEMA_VERSION });
    }
    conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;").map_err(&err)?;
    Ok(conn)
}
