//! Read side: queries, stats and chain verification on their own connection.
//! Under WAL a reader sees a consistent snapshot and never blocks the writer.

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use crate::AuditError;
use crate::error::sql_err;
use crate::record::{Field, HASHED_COLUMNS, Hash, N_HASHED, Severity, ZERO_HASH, chain_hash, checkpoint_hash};
use crate::schema::open_reader;
use crate::store::checkpoint_fields;

/// Filters for `query`, `tail` and `export`. All set filters must match (AND).
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    /// Inclusive lower bound on event time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Exclusive upper bound on event time.
    pub until_ns: Option<i64>,
    /// Any of these types ("exec", "open", ..., "alert").
    pub types: Vec<String>,
    pub pid: Option<u64>,
    /// SQLite GLOB on the executable path (`*`, `?`, `[...]`).
    pub exe: Option<String>,
    /// Container id or a prefix of it.
    pub container: Option<String>,
    pub uid: Option<u64>,
    /// GLOB on the file path.
    pub path: Option<String>,
    /// Remote address (daddr); a GLOB if it contains `*`, `?` or `[`.
    pub addr: Option<String>,
    pub port: Option<u16>,
    pub rule: Option<String>,
    /// Minimum alert severity (only alerts have one).
    pub min_severity: Option<Severity>,
    /// Substring of the full JSON (case-sensitive).
    pub contains: Option<String>,
    /// Only records after this chain position (used by `tail --follow`).
    pub after_seq: Option<u64>,
}

/// One stored row as read back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredRecord {
    pub seq: u64,
    pub ts_ns: i64,
    pub kind: i64,
    pub typ: Option<String>,
    pub pid: Option<i64>,
    pub uid: Option<i64>,
    pub exe: Option<String>,
    pub container: Option<String>,
    pub path: Option<String>,
    pub daddr: Option<String>,
    pub dport: Option<i64>,
    pub rule: Option<String>,
    pub severity: Option<i64>,
    /// The event or alert exactly as recorded.
    pub json: String,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Escape GLOB metacharacters so a literal prefix can be followed by `*`.
fn glob_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '*' => o.push_str("[*]"),
            '?' => o.push_str("[?]"),
            '[' => o.push_str("[[]"),
            c => o.push(c),
        }
    }
    o
}

impl QueryFilter {
    /// WHERE clause + parameters. Every string filter is bound, never spliced.
    fn to_sql(&self) -> (String, Vec<SqlValue>) {
        let mut w: Vec<String> = Vec::new();
        let mut p: Vec<SqlValue> = Vec::new();
        let bind = |p: &mut Vec<SqlValue>, v: SqlValue| {
            p.push(v);
            format!("?{}", p.len())
        };
        if let Some(s) = self.since_ns {
            let a = bind(&mut p, SqlValue::Integer(s));
            w.push(format!("ts_ns >= {a}"));
        }
        if let Some(u) = self.until_ns {
            let a = bind(&mut p, SqlValue::Integer(u));
            w.push(format!("ts_ns < {a}"));
        }
        if !self.types.is_empty() {
            let names: Vec<String> = self.types.iter().map(|t| bind(&mut p, SqlValue::Text(t.clone()))).collect();
            w.push(format!("type IN ({})", names.join(", ")));
        }
        if let Some(v) = self.pid {
            let a = bind(&mut p, SqlValue::Integer(v as i64));
            w.push(format!("pid = {a}"));
        }
        if let Some(v) = self.uid {
            let a = bind(&mut p, SqlValue::Integer(v as i64));
            w.push(format!("uid = {a}"));
        }
        // "col IS NOT NULL" lets SQLite use the partial indexes with GLOB.
        let text = |w: &mut Vec<String>, p: &mut Vec<SqlValue>, col: &str, v: &Option<String>, glob: bool| {
            if let Some(v) = v {
                let a = bind(p, SqlValue::Text(v.clone()));
                let op = if glob && has_glob(v) { "GLOB" } else { "=" };
                w.push(format!("{col} IS NOT NULL AND {col} {op} {a}"));
            }
        };
        text(&mut w, &mut p, "exe", &self.exe, true);
        text(&mut w, &mut p, "path", &self.path, true);
        text(&mut w, &mut p, "daddr", &self.addr, true);
        text(&mut w, &mut p, "rule", &self.rule, true);
        if let Some(c) = &self.container {
            let a = bind(&mut p, SqlValue::Text(format!("{}*", glob_escape(c))));
            w.push(format!("container IS NOT NULL AND container GLOB {a}"));
        }
        if let Some(v) = self.port {
            let a = bind(&mut p, SqlValue::Integer(v as i64));
            w.push(format!("dport IS NOT NULL AND dport = {a}"));
        }
        if let Some(s) = self.min_severity {
            // An IN list of the (few) ranks lets SQLite use the index; a range
            // made it prefer a full scan to avoid sorting.
            let ranks: Vec<String> =
                (s as i64..=Severity::Critical as i64).map(|r| bind(&mut p, SqlValue::Integer(r))).collect();
            w.push(format!("severity IN ({})", ranks.join(", ")));
        }
        if let Some(c) = &self.contains {
            let a = bind(&mut p, SqlValue::Text(c.clone()));
            w.push(format!("instr(json, {a}) > 0"));
        }
        if let Some(s) = self.after_seq {
            let a = bind(&mut p, SqlValue::Integer(s as i64));
            w.push(format!("seq > {a}"));
        }
        let clause = if w.is_empty() { String::new() } else { format!(" WHERE {}", w.join(" AND ")) };
        (clause, p)
    }

    /// Only a time bound (no other indexed filter): walk the time index itself
    /// so a narrow window does not scan the table and a wide one stops at LIMIT.
    fn time_driven(&self) -> bool {
        (self.since_ns.is_some() || self.until_ns.is_some())
            && self.types.is_empty()
            && self.pid.is_none()
            && self.uid.is_none()
            && self.exe.is_none()
            && self.path.is_none()
            && self.addr.is_none()
            && self.rule.is_none()
            && self.container.is_none()
            && self.port.is_none()
            && self.min_severity.is_none()
    }
}

const SELECT_COLS: &str =
    "SELECT seq, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, rule, severity, json FROM records";

fn read_record(r: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        seq: r.get::<_, i64>(0)? as u64,
        ts_ns: r.get(1)?,
        kind: r.get(2)?,
        typ: r.get(3)?,
        pid: r.get(4)?,
        uid: r.get(5)?,
        exe: r.get(6)?,
        container: r.get(7)?,
        path: r.get(8)?,
        daddr: r.get(9)?,
        dport: r.get(10)?,
        rule: r.get(11)?,
        severity: r.get(12)?,
        json: r.get(13)?,
    })
}

/// Summary for `sensor audit stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DbStats {
    pub path: PathBuf,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub by_type: Vec<(String, u64)>,
    pub by_rule: Vec<(String, u64)>,
    pub by_severity: Vec<(String, u64)>,
    pub checkpoints: u64,
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub free_bytes: u64,
    pub schema_version: i64,
}

/// What kind of tampering (or damage) verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
    Checkpoint,
    Head,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// First affected chain position, when there is one.
    pub seq: Option<u64>,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(s) => write!(f, "{:?} at record seq {s}: {}", self.kind, self.detail),
            None => write!(f, "{:?}: {}", self.kind, self.detail),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub checkpoints: u64,
    /// Chain head hash (hex): record it elsewhere to anchor the chain externally.
    pub head_hash: String,
    /// The first problem found; None means the chain verified.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// How many rows after a broken link are examined to tell reordering and insertion from edits.
const CLASSIFY_WINDOW: i64 = 1024;

struct RawRow {
    seq: i64,
    vals: Vec<SqlValue>,
    hash: Vec<u8>,
}

impl RawRow {
    fn fields_at(&self, seq: i64) -> Vec<Field<'_>> {
        let mut f: Vec<Field<'_>> = self.vals.iter().map(|v| Field::from(rusqlite::types::ValueRef::from(v))).collect();
        f[0] = Field::Int(seq);
        f
    }
    fn links(&self, prev: &Hash, at: i64) -> bool {
        chain_hash(prev, &self.fields_at(at))[..] == self.hash[..]
    }
}

/// Read-only handle on an audit database.
pub struct AuditReader {
    conn: Connection,
    path: PathBuf,
}

impl AuditReader {
    /// Open an existing database; errors (missing, corrupt, foreign, newer schema) are explicit.
    pub fn open(path: &Path) -> Result<AuditReader, AuditError> {
        let conn = open_reader(path)?;
        Ok(AuditReader { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
        sql_err(&self.path)
    }

    /// The newest `limit` matching records, returned oldest first (0 = all, streamed via [`scan`](Self::scan) is better).
    pub fn query(&self, f: &QueryFilter, limit: usize) -> Result<Vec<StoredRecord>, AuditError> {
        let (clause, params) = f.to_sql();
        let order = if f.time_driven() { "ts_ns DESC, seq DESC" } else { "seq DESC" };
        let lim = if limit == 0 { String::new() } else { format!(" LIMIT {limit}") };
        let sql = format!("{SELECT_COLS}{clause} ORDER BY {order}{lim}");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt.query_map(params_from_iter(params), read_record).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())?);
        }
        out.reverse();
        Ok(out)
    }

    /// Stream every matching record oldest first; `cb` returns false to stop.
    /// Memory stays bounded however many rows match.
    pub fn scan(
        &self,
        f: &QueryFilter,
        mut cb: impl FnMut(StoredRecord) -> anyhow::Result<bool>,
    ) -> anyhow::Result<u64> {
        let (clause, params) = f.to_sql();
        let order = if f.time_driven() { "ts_ns, seq" } else { "seq" };
        let sql = format!("{SELECT_COLS}{clause} ORDER BY {order}");
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(self.err())?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(self.err())? {
            n += 1;
            if !cb(read_record(r).map_err(self.err())?)? {
                break;
            }
        }
        Ok(n)
    }

    /// The query plan SQLite picks for a filter (used by tests and the benchmark).
    pub fn explain(&self, f: &QueryFilter, limit: usize) -> Result<String, AuditError> {
        let (clause, params) = f.to_sql();
        let order = if f.time_driven() { "ts_ns DESC, seq DESC" } else { "seq DESC" };
        let sql = format!("EXPLAIN QUERY PLAN {SELECT_COLS}{clause} ORDER BY {order} LIMIT {}", limit.max(1));
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let rows = stmt.query_map(params_from_iter(params), |r| r.get::<_, String>(3)).map_err(self.err())?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(self.err())?);
        }
        Ok(out.join("; "))
    }

    pub fn last_seq(&self) -> Result<u64, AuditError> {
        let v: Option<i64> =
            self.conn.query_row("SELECT max(seq) FROM records", [], |r| r.get(0)).map_err(self.err())?;
        Ok(v.unwrap_or(0) as u64)
    }

    pub fn stats(&self) -> Result<DbStats, AuditError> {
        let err = self.err();
        let c = &self.conn;
        c.execute_batch("BEGIN").map_err(&err)?;
        let res = (|| -> rusqlite::Result<DbStats> {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0));
            let group = |sql: &str| -> rusqlite::Result<Vec<(String, u64)>> {
                let mut st = c.prepare(sql)?;
                let rows = st.query_map([], |r| {
                    Ok((r.get::<_, Option<String>>(0)?.unwrap_or_else(|| "(none)".into()), r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect()
            };
            let mut by_severity = Vec::new();
            let mut st = c.prepare(
                "SELECT severity, count(*) FROM records WHERE severity IS NOT NULL GROUP BY severity ORDER BY severity DESC",
            )?;
            for r in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
                let (s, n) = r?;
                let name = Severity::from_rank(s).map_or_else(|| format!("?{s}"), |s| s.as_str().to_string());
                by_severity.push((name, n as u64));
            }
            let page_size = one("PRAGMA page_size")?.unwrap_or(4096);
            Ok(DbStats {
                path: self.path.clone(),
                records: one("SELECT count(*) FROM records")?.unwrap_or(0) as u64,
                first_seq: one("SELECT min(seq) FROM records")?.map(|v| v as u64),
                last_seq: one("SELECT max(seq) FROM records")?.map(|v| v as u64),
                // Separate min/max queries: SQLite answers each from the index, but not both in one.
                first_ts: one("SELECT min(ts_ns) FROM records")?.map(crate::time::format_rfc3339_ns),
                last_ts: one("SELECT max(ts_ns) FROM records")?.map(crate::time::format_rfc3339_ns),
                by_type: group("SELECT type, count(*) AS n FROM records GROUP BY type ORDER BY n DESC")?,
                by_rule: group(
                    "SELECT rule, count(*) AS n FROM records WHERE rule IS NOT NULL GROUP BY rule ORDER BY n DESC",
                )?,
                by_severity,
                checkpoints: one("SELECT count(*) FROM checkpoints")?.unwrap_or(0) as u64,
                file_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
                wal_bytes: std::fs::metadata(wal_path(&self.path)).map(|m| m.len()).unwrap_or(0),
                free_bytes: (one("PRAGMA freelist_count")?.unwrap_or(0) * page_size) as u64,
                schema_version: one("PRAGMA user_version")?.unwrap_or(0),
            })
        })();
        let _ = c.execute_batch("COMMIT");
        res.map_err(err)
    }

    /// Check the whole chain in one consistent snapshot and report the first problem.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        self.conn.execute_batch("BEGIN").map_err(self.err())?;
        let res = self.verify_inner();
        let _ = self.conn.execute_batch("COMMIT");
        res.map_err(self.err())
    }

    fn verify_inner(&self) -> rusqlite::Result<VerifyReport> {
        let c = &self.conn;
        let mut report = VerifyReport {
            records: 0,
            first_seq: 0,
            last_seq: 0,
            checkpoints: 0,
            head_hash: String::new(),
            problem: None,
        };
        let bad = |kind, seq: Option<i64>, detail: String| Problem { kind, seq: seq.map(|s| s as u64), detail };

        // 1. Head.
        let head: Option<(SqlValue, SqlValue)> =
            c.query_row("SELECT seq, hash FROM head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        let (head_seq, head_hash) = match head {
            Some((SqlValue::Integer(s), SqlValue::Blob(h))) if h.len() == 32 => (s, h),
            _ => {
                report.problem = Some(bad(ProblemKind::Head, None, "chain head row is missing or malformed".into()));
                return Ok(report);
            }
        };
        report.head_hash = hex::encode(&head_hash);

        // 2. Checkpoint chain; the newest checkpoint holds the retention anchor.
        let mut cps: Vec<(i64, i64, Vec<u8>)> = Vec::new(); // (id, seq, hash)
        let mut first_seq: i64 = 1;
        let mut anchor: Hash = ZERO_HASH;
        {
            let mut st = c.prepare(
                "SELECT id, ts_ns, reason, seq, hash, first_seq, anchor, prev, cp_hash FROM checkpoints ORDER BY id",
            )?;
            let mut rows = st.query([])?;
            let mut prev: Option<(i64, Vec<u8>)> = None;
            while let Some(r) = rows.next()? {
                let v: Vec<SqlValue> = (0..9).map(|i| r.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
                let parsed = match (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) {
                    (
                        SqlValue::Integer(id),
                        SqlValue::Integer(ts),
                        SqlValue::Text(reason),
                        SqlValue::Integer(seq),
                        SqlValue::Blob(h),
                        SqlValue::Integer(fs),
                        SqlValue::Blob(an),
                        SqlValue::Blob(pv),
                        SqlValue::Blob(cph),
                    ) if h.len() == 32 && an.len() == 32 && pv.len() == 32 => {
                        Some((*id, *ts, reason.clone(), *seq, h.clone(), *fs, an.clone(), pv.clone(), cph.clone()))
                    }
                    _ => None,
                };
                let Some((id, ts, reason, seq, h, fs, an, pv, cph)) = parsed else {
                    report.problem = Some(bad(ProblemKind::Checkpoint, None, "a checkpoint row is malformed".into()));
                    return Ok(report);
                };
                if let Some((pid, ph)) = &prev
                    && (id != pid + 1 || pv != *ph)
                {
                    report.problem = Some(bad(
                        ProblemKind::Checkpoint,
                        None,
                        format!(
                            "checkpoint {id} does not follow checkpoint {pid} (checkpoint deleted, inserted or edited)"
                        ),
                    ));
                    return Ok(report);
                }
                let pv: Hash = pv.as_slice().try_into().unwrap_or(ZERO_HASH);
                let expect = checkpoint_hash(&pv, &checkpoint_fields(id, ts, &reason, seq, &h, fs, &an));
                if expect[..] != cph[..] {
                    report.problem = Some(bad(
                        ProblemKind::Checkpoint,
                        None,
                        format!("checkpoint {id} was modified (its hash does not match its contents)"),
                    ));
                    return Ok(report);
                }
                first_seq = fs;
                anchor = an.as_slice().try_into().unwrap_or(ZERO_HASH);
                cps.push((id, seq, h));
                prev = Some((id, cph));
            }
        }
        report.checkpoints = cps.len() as u64;
        report.first_seq = first_seq as u64;
        if let Some((id, seq, _)) = cps.iter().find(|(_, s, _)| *s > head_seq) {
            report.problem = Some(bad(
                ProblemKind::Head,
                Some(*seq),
                format!("checkpoint {id} covers seq {seq} but the chain head is at {head_seq} (head rolled back)"),
            ));
            return Ok(report);
        }
        let mut cp_iter = cps.iter().filter(|(_, s, _)| *s >= first_seq).peekable();

        // 3. Walk the records in chain order.
        let sql = format!("SELECT {HASHED_COLUMNS}, hash FROM records ORDER BY seq");
        let mut st = c.prepare(&sql)?;
        let mut rows = st.query([])?;
        let mut expected = first_seq;
        let mut prev: Hash = anchor;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            if seq < expected {
                report.problem = Some(bad(
                    ProblemKind::Inserted,
                    Some(seq),
                    format!("record before the retention anchor (first retained seq is {first_seq})"),
                ));
                return Ok(report);
            }
            if seq > expected {
                report.problem = Some(bad(
                    ProblemKind::Deleted,
                    Some(expected),
                    if seq == expected + 1 {
                        format!("record {expected} is missing")
                    } else {
                        format!("records {expected}..={} are missing", seq - 1)
                    },
                ));
                return Ok(report);
            }
            if seq > head_seq {
                report.problem = Some(bad(
                    ProblemKind::Inserted,
                    Some(seq),
                    format!("record beyond the chain head (head is {head_seq})"),
                ));
                return Ok(report);
            }
            let mut fields: [Field<'_>; N_HASHED] = [Field::Null; N_HASHED];
            for (i, f) in fields.iter_mut().enumerate() {
                *f = Field::from(r.get_ref(i)?);
            }
            let h = chain_hash(&prev, &fields);
            let stored = r.get_ref(N_HASHED)?;
            if stored.as_blob().ok() != Some(&h[..]) {
                let describe = describe_row(&fields);
                report.problem = Some(self.classify(seq, &prev, describe)?);
                report.records = (seq - first_seq) as u64;
                return Ok(report);
            }
            while let Some((id, cseq, chash)) = cp_iter.peek() {
                if *cseq > seq {
                    break;
                }
                if *cseq == seq && chash[..] != h[..] {
                    report.problem = Some(bad(
                        ProblemKind::Modified,
                        Some(seq),
                        format!("record disagrees with checkpoint {id} (chain rewritten from here)"),
                    ));
                    return Ok(report);
                }
                cp_iter.next();
            }
            prev = h;
            expected = seq + 1;
            report.records += 1;
        }
        report.last_seq = (expected - 1).max(0) as u64;
        if expected - 1 < head_seq {
            report.problem = Some(bad(
                ProblemKind::Deleted,
                Some(expected),
                format!("records {expected}..={head_seq} are missing (tail truncated)"),
            ));
        } else if prev[..] != head_hash[..] {
            report.problem = Some(bad(
                ProblemKind::Head,
                Some(head_seq),
                "the last record does not match the chain head hash".into(),
            ));
        } else if let Some((id, cseq, _)) = cp_iter.next() {
            report.problem = Some(bad(
                ProblemKind::Deleted,
                Some(*cseq),
                format!("checkpoint {id} refers to record {cseq}, which is missing"),
            ));
        }
        Ok(report)
    }

    /// The link into `seq` is broken; look around it to say what happened.
    fn classify(&self, seq: i64, prev: &Hash, describe: String) -> rusqlite::Result<Problem> {
        let sql = format!("SELECT {HASHED_COLUMNS}, hash FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2");
        let mut st = self.conn.prepare(&sql)?;
        let rows: Vec<RawRow> = st
            .query_map([seq, CLASSIFY_WINDOW], |r| {
                let vals: Vec<SqlValue> = (0..N_HASHED).map(|i| r.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
                let hash = match r.get::<_, SqlValue>(N_HASHED)? {
                    SqlValue::Blob(b) => b,
                    _ => Vec::new(),
                };
                Ok(RawRow { seq: r.get(0)?, vals, hash })
            })?
            .collect::<Result<_, _>>()?;
        let mk =
            |kind, detail: String| Problem { kind, seq: Some(seq as u64), detail: format!("{detail} [{describe}]") };
        let Some(cur) = rows.first() else {
            return Ok(mk(ProblemKind::Modified, "record vanished during verification".into()));
        };
        // Does the record that belongs at `seq` sit further down?
        if let Some(k) = rows.iter().skip(1).position(|r| r.links(prev, seq)).map(|k| k + 1) {
            let moved = &rows[k];
            // Swapped: the row now at `seq` links in at the other position.
            let prev_there: Vec<u8> = if k == 1 { moved.hash.clone() } else { rows[k - 1].hash.clone() };
            if let Ok(prev_there) = <Hash>::try_from(prev_there.as_slice())
                && cur.links(&prev_there, moved.seq)
            {
                return Ok(mk(ProblemKind::Reordered, format!("records {seq} and {} were swapped", moved.seq)));
            }
            return Ok(mk(
                ProblemKind::Inserted,
                format!("{k} record(s) inserted before the original record {seq} (now at {})", moved.seq),
            ));
        }
        if let (Some(next), Ok(own)) = (rows.get(1), <Hash>::try_from(cur.hash.as_slice()))
            && next.seq == seq + 1
            && next.links(&own, next.seq)
        {
            return Ok(mk(
                ProblemKind::Modified,
                "record contents were edited (they no longer match its chain hash), or the record before it was rewritten with a recomputed hash".into(),
            ));
        }
        Ok(mk(ProblemKind::Modified, "record was modified or replaced (its hash no longer links the chain)".into()))
    }
}

fn describe_row(f: &[Field<'_>]) -> String {
    let ts = match f[1] {
        Field::Int(ns) => crate::time::format_rfc3339_ns(ns),
        _ => "?".into(),
    };
    let text = |x: &Field<'_>| match x {
        Field::Text(t) => String::from_utf8_lossy(t).into_owned(),
        Field::Int(i) => i.to_string(),
        _ => "-".into(),
    };
    format!("{} {} pid {} {}", ts, text(&f[3]), text(&f[4]), text(&f[6]))
}

pub(crate) fn wal_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}
