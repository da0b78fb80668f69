//! Read side: queries, stats and chain verification on their own connection.
//! Under WAL a reader sees a consistent snapshot and never blocks the writer.

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};

use crate::AuditError;
use crate::error::sql_err;
use crate::index::{ZONE_ROWS, col, decode_offsets, decode_zones};
use crate::record::{
    CHAIN_HMAC, CHAIN_SHA256, ChainHasher, Field, HASHED_COLUMNS, Hash, N_HASHED, Severity, ZERO_HASH,
};
use crate::schema::{meta_get, open_reader};
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

/// A posting lookup derived from one filter.
#[derive(Debug, Clone)]
enum Term {
    /// Any of these values.
    Vals(Vec<SqlValue>),
    /// Text values in [lo, lo + U+10FFFF) matching the GLOB `pat`; `lo` is the
    /// pattern's literal prefix. `grams`: trigram-map bits every matching
    /// value sets (path and exe only), so a segment whose map lacks one is skipped.
    Glob { lo: String, pat: String, grams: Vec<usize> },
    /// A glob whose literal ending is longer than its literal start: values
    /// ending in those bytes, found as a prefix of the reversed column `col`
    /// (`rev` = the ending reversed). Segments indexed before the reversed
    /// columns existed use `fallback` (the plain glob).
    Suffix { col: i64, rev: Vec<u8>, fallback: Box<Term> },
}

/// Conditions the rows must meet (re-checked on every candidate) plus the posting lookups.
struct Plan {
    conds: Vec<String>,
    params: Vec<SqlValue>,
    terms: Vec<(i64, Term)>,
}

/// The literal prefix of a GLOB pattern.
fn glob_prefix(p: &str) -> &str {
    &p[..p.find(['*', '?', '[']).unwrap_or(p.len())]
}

/// The trigram bits of the literal runs of a GLOB pattern (`[...]` classes,
/// `*` and `?` separate runs): every value the pattern matches contains each run.
fn glob_grams(p: &str) -> Vec<usize> {
    let mut bits = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    let mut in_class = false;
    for &b in p.as_bytes() {
        match b {
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            _ if in_class => {}
            b'*' | b'?' => {
                bits.extend(crate::index::gram_bits(&run));
                run.clear();
            }
            _ => run.push(b),
        }
        if in_class && !run.is_empty() {
            bits.extend(crate::index::gram_bits(&run));
            run.clear();
        }
    }
    if !in_class {
        bits.extend(crate::index::gram_bits(&run));
    }
    bits.sort_unstable();
    bits.dedup();
    bits
}

/// The literal ending of a GLOB pattern (after its last metacharacter; a
/// `]` counts as one, which can only make the ending shorter).
fn glob_suffix(p: &str) -> &str {
    &p[p.rfind(['*', '?', '[', ']']).map_or(0, |i| i + 1)..]
}

impl QueryFilter {
    /// Conditions + parameters (every string filter is bound, never spliced) and posting terms.
    fn plan(&self) -> Plan {
        let mut w: Vec<String> = Vec::new();
        let mut p: Vec<SqlValue> = Vec::new();
        let mut terms: Vec<(i64, Term)> = Vec::new();
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
            let vals: Vec<SqlValue> = self.types.iter().map(|t| SqlValue::Text(t.clone())).collect();
            let names: Vec<String> = vals.iter().map(|v| bind(&mut p, v.clone())).collect();
            w.push(format!("type IN ({})", names.join(", ")));
            terms.push((col::TYPE, Term::Vals(vals)));
        }
        for (c, name, v) in [(col::PID, "pid", self.pid), (col::UID, "uid", self.uid)] {
            if let Some(v) = v {
                let a = bind(&mut p, SqlValue::Integer(v as i64));
                w.push(format!("{name} = {a}"));
                terms.push((c, Term::Vals(vec![SqlValue::Integer(v as i64)])));
            }
        }
        for (c, name, v) in [
            (col::EXE, "exe", &self.exe),
            (col::PATH, "path", &self.path),
            (col::DADDR, "daddr", &self.addr),
            (col::RULE, "rule", &self.rule),
        ] {
            if let Some(v) = v {
                let a = bind(&mut p, SqlValue::Text(v.clone()));
                if has_glob(v) {
                    w.push(format!("{name} GLOB {a}"));
                    let (prefix, suffix) = (glob_prefix(v), glob_suffix(v));
                    let grams = if matches!(c, col::PATH | col::EXE) { glob_grams(v) } else { Vec::new() };
                    let glob = Term::Glob { lo: prefix.to_string(), pat: v.clone(), grams };
                    let rev_col = match c {
                        col::PATH => Some(col::PATH_REV),
                        col::EXE => Some(col::EXE_REV),
                        _ => None,
                    };
                    terms.push((
                        c,
                        match rev_col {
                            Some(rc) if suffix.len() > prefix.len() => {
                                Term::Suffix { col: rc, rev: suffix.bytes().rev().collect(), fallback: Box::new(glob) }
                            }
                            _ => glob,
                        },
                    ));
                } else {
                    w.push(format!("{name} = {a}"));
                    terms.push((c, Term::Vals(vec![SqlValue::Text(v.clone())])));
                }
            }
        }
        if let Some(c) = &self.container {
            let pat = format!("{}*", glob_escape(c));
            let a = bind(&mut p, SqlValue::Text(pat.clone()));
            w.push(format!("container GLOB {a}"));
            terms.push((col::CONTAINER, Term::Glob { lo: c.clone(), pat, grams: Vec::new() }));
        }
        if let Some(v) = self.port {
            let a = bind(&mut p, SqlValue::Integer(v as i64));
            w.push(format!("dport = {a}"));
            terms.push((col::DPORT, Term::Vals(vec![SqlValue::Integer(v as i64)])));
        }
        if let Some(s) = self.min_severity {
            let vals: Vec<SqlValue> = (s as i64..=Severity::Critical as i64).map(SqlValue::Integer).collect();
            let ranks: Vec<String> = vals.iter().map(|v| bind(&mut p, v.clone())).collect();
            w.push(format!("severity IN ({})", ranks.join(", ")));
            terms.push((col::SEVERITY, Term::Vals(vals)));
        }
        if let Some(c) = &self.contains {
            let a = bind(&mut p, SqlValue::Text(c.clone()));
            w.push(format!("instr(json, {a}) > 0"));
        }
        if let Some(s) = self.after_seq {
            let a = bind(&mut p, SqlValue::Integer(s as i64));
            w.push(format!("seq > {a}"));
        }
        Plan { conds: w, params: p, terms }
    }

    fn has_time(&self) -> bool {
        self.since_ns.is_some() || self.until_ns.is_some()
    }

    /// Does a [lo, hi] event-time range overlap the filter's window?
    fn time_overlaps(&self, lo: i64, hi: i64) -> bool {
        self.since_ns.is_none_or(|s| hi >= s) && self.until_ns.is_none_or(|u| lo < u)
    }
}

/// One indexed segment as read from `segments`.
struct SegInfo {
    seg: i64,
    first: i64,
    last: i64,
    min_ts: i64,
    max_ts: i64,
    zones: Vec<(i64, i64)>,
}

/// A piece of the search: candidate seqs from postings, or a seq range to scan.
enum Unit {
    Seqs(Vec<i64>),
    Range(i64, i64),
}

const SELECT_COLS: &str =
    "SELECT seq, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, rule, severity, json FROM records";

/// Intersection of two ascending lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

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
    /// The key given does not fit the trail (wrong key, keyed/unkeyed mismatch).
    Key,
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
    /// Chain head position and hash (hex): record `head_seq:head_hash` elsewhere
    /// and pass it back with `--expect-head` to detect truncation + rewrite.
    pub head_seq: u64,
    pub head_hash: String,
    /// "sha256" or "hmac-sha256".
    pub chain: String,
    /// Fingerprint of the key a keyed trail was written with.
    pub key_id: Option<String>,
    /// False for a keyed trail verified without its key: only the structure
    /// (sequence, links between checkpoints, records and head) was checked.
    pub hashes_checked: bool,
    /// The `--expect-head` anchor that was confirmed, if one was given.
    pub anchor_checked: Option<String>,
    /// The first problem found; None means the chain verified.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// No problem found (see `hashes_checked` for how thorough the check was).
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// `SEQ:HEX` of the chain head, the form `--expect-head` takes.
    pub fn head(&self) -> String {
        format!("{}:{}", self.head_seq, self.head_hash)
    }
}

/// A chain position and hash recorded earlier (`sensor audit verify` prints it as `SEQ:HEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadAnchor {
    pub seq: u64,
    pub hash: [u8; 32],
}

impl std::str::FromStr for HeadAnchor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid head {s:?}: expected SEQ:HEX as printed by `sensor audit verify` (e.g. 1234:9f86d0...)")
        };
        let (seq, hex) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let hash: [u8; 32] = hex::decode(hex).ok().and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
        if seq == 0 {
            return Err(bad());
        }
        Ok(HeadAnchor { seq, hash })
    }
}

/// What `verify` checks beyond the chain itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Key file of a keyed trail.
    pub key_file: Option<PathBuf>,
    /// A head recorded earlier that must still be in the chain.
    pub expect_head: Option<HeadAnchor>,
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
    fn links(&self, h: &ChainHasher, prev: &Hash, at: i64) -> bool {
        h.chain(prev, &self.fields_at(at))[..] == self.hash[..]
    }
}

/// Read-only handle on an audit database.
pub struct AuditReader {
    conn: Connection,
    path: PathBuf,
    /// First segment with reversed-column postings (`i64::MAX`: none).
    suffix_from: i64,
    /// The file has trigram maps (v3; a v2 file is read without them).
    has_grams: bool,
}

impl AuditReader {
    /// Open an existing database; errors (missing, corrupt, foreign, newer schema) are explicit.
    pub fn open(path: &Path) -> Result<AuditReader, AuditError> {
        let conn = open_reader(path)?;
        let suffix_from = match meta_get(&conn, crate::index::SUFFIX_POSTINGS_FROM).map_err(sql_err(path))? {
            Some(rusqlite::types::Value::Integer(s)) => s,
            _ => i64::MAX,
        };
        let has_grams = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'grams'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sql_err(path))?
            > 0;
        Ok(AuditReader { conn, path: path.to_path_buf(), suffix_from, has_grams })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
        sql_err(&self.path)
    }

    /// The newest `limit` matching records (0 = all), returned oldest first (chain order).
    pub fn query(&self, f: &QueryFilter, limit: usize) -> Result<Vec<StoredRecord>, AuditError> {
        let mut out = Vec::new();
        self.walk(f, true, |r| {
            out.push(r);
            Ok(limit == 0 || out.len() < limit)
        })
        .map_err(|e| match e.downcast::<AuditError>() {
            Ok(a) => a,
            Err(e) => AuditError::Corrupt { path: self.path.clone(), detail: e.to_string() },
        })?;
        out.reverse();
        Ok(out)
    }

    /// Stream every matching record oldest first; `cb` returns false to stop.
    /// Memory stays bounded however many rows match.
    pub fn scan(&self, f: &QueryFilter, cb: impl FnMut(StoredRecord) -> anyhow::Result<bool>) -> anyhow::Result<u64> {
        self.walk(f, false, cb)
    }

    /// How a filter is answered (used by tests and the benchmark).
    pub fn explain(&self, f: &QueryFilter, _limit: usize) -> Result<String, AuditError> {
        let plan = f.plan();
        let segs = self.segments(false).map_err(self.err())?;
        let tail = segs.last().map_or(0, |s| s.last + 1);
        let cols: Vec<String> = plan
            .terms
            .iter()
            .map(|(c, t)| {
                let name = ["type", "pid", "uid", "exe", "container", "path", "daddr", "dport", "rule", "severity"]
                    [*c as usize];
                if matches!(t, Term::Suffix { .. }) { format!("{name} (by ending)") } else { name.to_string() }
            })
            .collect();
        let how = if cols.is_empty() {
            if f.has_time() { "seq ranges from time zones".to_string() } else { "seq ranges".to_string() }
        } else {
            format!("postings on {}", cols.join(" & "))
        };
        Ok(format!("{} indexed segments via {how}; scan of the tail from seq {tail}", segs.len()))
    }

    fn segments(&self, zones: bool) -> rusqlite::Result<Vec<SegInfo>> {
        let sql = if zones {
            "SELECT seg, first_seq, last_seq, min_ts, max_ts, zones FROM segments ORDER BY seg"
        } else {
            "SELECT seg, first_seq, last_seq, min_ts, max_ts, x'' FROM segments ORDER BY seg"
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([], |r| {
            Ok(SegInfo {
                seg: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
                min_ts: r.get(3)?,
                max_ts: r.get(4)?,
                zones: decode_zones(&r.get::<_, Vec<u8>>(5)?),
            })
        })?;
        rows.collect()
    }

    /// Whether the segment's trigram map of `col` has every bit in `bits`
    /// (true when the segment has no map: written before maps existed).
    fn may_contain(&self, seg: i64, col: i64, bits: &[usize]) -> rusqlite::Result<bool> {
        if !self.has_grams {
            return Ok(true);
        }
        let mut st = self.conn.prepare_cached("SELECT bits FROM grams WHERE seg = ?1 AND col = ?2")?;
        let mut rows = st.query(rusqlite::params![seg, col])?;
        let Some(r) = rows.next()? else { return Ok(true) };
        let rusqlite::types::ValueRef::Blob(map) = r.get_ref(0)? else { return Ok(true) };
        if map.len() * 8 != crate::index::GRAM_BITS {
            return Ok(true);
        }
        Ok(bits.iter().all(|&b| map[b / 8] & (1 << (b % 8)) != 0))
    }

    /// Positions (as seqs) in a segment matching every term.
    fn candidates(&self, seg: &SegInfo, terms: &[(i64, Term)]) -> rusqlite::Result<Vec<i64>> {
        let mut acc: Option<Vec<u32>> = None;
        let mut offs = Vec::new();
        for (c, t) in terms {
            offs.clear();
            // Segments indexed before the reversed columns existed: the plain glob.
            let t = match t {
                Term::Suffix { fallback, .. } if seg.seg < self.suffix_from => &**fallback,
                t => t,
            };
            let mut blobs =
                |st: &mut rusqlite::CachedStatement<'_>, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<()> {
                    let mut rows = st.query(p)?;
                    while let Some(r) = rows.next()? {
                        if let rusqlite::types::ValueRef::Blob(b) = r.get_ref(0)? {
                            decode_offsets(b, &mut offs);
                        }
                    }
                    Ok(())
                };
            let n_values = match t {
                Term::Vals(vals) => {
                    let mut st = self
                        .conn
                        .prepare_cached("SELECT seqs FROM postings WHERE seg = ?1 AND col = ?2 AND val = ?3")?;
                    for v in vals {
                        blobs(&mut st, &[&seg.seg, c, v])?;
                    }
                    vals.len()
                }
                Term::Glob { lo, pat, grams } => {
                    if !grams.is_empty() && !self.may_contain(seg.seg, *c, grams)? {
                        acc = Some(Vec::new());
                        break;
                    }
                    let mut st = self.conn.prepare_cached(
                        "SELECT seqs FROM postings WHERE seg = ?1 AND col = ?2 AND val >= ?3 AND val < ?4 AND val GLOB ?5",
                    )?;
                    let hi = format!("{lo}\u{10FFFF}");
                    blobs(&mut st, &[&seg.seg, c, lo, &hi, pat])?;
                    2
                }
                Term::Suffix { col, rev, .. } => {
                    match crate::index::prefix_successor(rev) {
                        Some(hi) => {
                            let mut st = self.conn.prepare_cached(
                                "SELECT seqs FROM postings WHERE seg = ?1 AND col = ?2 AND val >= ?3 AND val < ?4",
                            )?;
                            blobs(&mut st, &[&seg.seg, col, rev, &hi])?;
                        }
                        // An ending of 0xFF bytes has no successor: every value from `rev` on.
                        None => {
                            let mut st = self.conn.prepare_cached(
                                "SELECT seqs FROM postings WHERE seg = ?1 AND col = ?2 AND val >= ?3",
                            )?;
                            blobs(&mut st, &[&seg.seg, col, rev])?;
                        }
                    }
                    2
                }
            };
            if n_values > 1 {
                offs.sort_unstable();
                offs.dedup();
            }
            acc = Some(match acc {
                None => offs.clone(),
                Some(prev) => intersect(&prev, &offs),
            });
            if acc.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        Ok(acc.unwrap_or_default().into_iter().map(|o| seg.first + o as i64).collect())
    }

    /// The search: indexed segments through their postings (or time zones),
    /// then the un-indexed tail by a plain scan; every candidate row is checked
    /// against the full filter in SQL. Runs in one read transaction (one snapshot).
    fn walk(
        &self,
        f: &QueryFilter,
        newest_first: bool,
        mut cb: impl FnMut(StoredRecord) -> anyhow::Result<bool>,
    ) -> anyhow::Result<u64> {
        let own_tx = self.conn.is_autocommit();
        if own_tx {
            self.conn.execute_batch("BEGIN").map_err(self.err())?;
        }
        let res = self.walk_inner(f, newest_first, &mut cb);
        if own_tx {
            let _ = self.conn.execute_batch("COMMIT");
        }
        res
    }

    fn walk_inner(
        &self,
        f: &QueryFilter,
        newest_first: bool,
        cb: &mut dyn FnMut(StoredRecord) -> anyhow::Result<bool>,
    ) -> anyhow::Result<u64> {
        let plan = f.plan();
        let segs = self.segments(plan.terms.is_empty() && f.has_time()).map_err(self.err())?;
        let tail_start = segs.last().map_or(0, |s| s.last + 1);
        let after = f.after_seq.map_or(i64::MIN, |s| s as i64);

        // Units in oldest-first order.
        let mut units: Vec<Unit> = Vec::new();
        let push_range = |units: &mut Vec<Unit>, lo: i64, hi: i64| {
            if let Some(Unit::Range(_, h)) = units.last_mut()
                && *h + 1 >= lo
            {
                *h = (*h).max(hi);
                return;
            }
            units.push(Unit::Range(lo, hi));
        };
        let time_only = plan.terms.is_empty() && f.has_time();
        for s in segs.iter().filter(|s| s.last > after && (time_only || f.time_overlaps(s.min_ts, s.max_ts))) {
            if !plan.terms.is_empty() {
                let c = self.candidates(s, &plan.terms).map_err(self.err())?;
                if !c.is_empty() {
                    units.push(Unit::Seqs(c));
                }
            } else if time_only && !s.zones.is_empty() {
                // Zones cover the events; marker rows (kept out of the zones) come from their posting.
                let mut ranges: Vec<(i64, i64)> = Vec::new();
                if f.time_overlaps(s.min_ts, s.max_ts) {
                    for (i, (lo, hi)) in s.zones.iter().enumerate() {
                        if lo <= hi && f.time_overlaps(*lo, *hi) {
                            let z = s.first + (i as i64) * ZONE_ROWS as i64;
                            ranges.push((z, (z + ZONE_ROWS as i64 - 1).min(s.last)));
                        }
                    }
                }
                let markers = [(col::MARKER, Term::Vals(vec![SqlValue::Integer(crate::record::KIND_MARKER)]))];
                ranges.extend(self.candidates(s, &markers).map_err(self.err())?.into_iter().map(|q| (q, q)));
                ranges.sort_unstable();
                for (lo, hi) in ranges {
                    push_range(&mut units, lo, hi);
                }
            } else {
                push_range(&mut units, s.first, s.last);
            }
        }
        push_range(&mut units, tail_start, i64::MAX);
        if newest_first {
            units.reverse();
        }

        let n = plan.params.len();
        let conds = plan.conds.iter().map(|c| format!(" AND {c}")).collect::<String>();
        let dir = if newest_first { "DESC" } else { "ASC" };
        let one_sql = format!("{SELECT_COLS} WHERE seq = ?{}{conds}", n + 1);
        let range_sql = format!("{SELECT_COLS} WHERE seq BETWEEN ?{} AND ?{}{conds} ORDER BY seq {dir}", n + 1, n + 2);
        let mut one = self.conn.prepare(&one_sql).map_err(self.err())?;
        let mut range = self.conn.prepare(&range_sql).map_err(self.err())?;
        let mut params = plan.params.clone();
        let mut delivered = 0u64;
        for u in units {
            match u {
                Unit::Seqs(mut seqs) => {
                    if newest_first {
                        seqs.reverse();
                    }
                    params.truncate(n);
                    params.push(SqlValue::Integer(0));
                    for seq in seqs {
                        params[n] = SqlValue::Integer(seq);
                        let mut rows = one.query(params_from_iter(params.iter())).map_err(self.err())?;
                        if let Some(r) = rows.next().map_err(self.err())? {
                            delivered += 1;
                            if !cb(read_record(r).map_err(self.err())?)? {
                                return Ok(delivered);
                            }
                        }
                    }
                }
                Unit::Range(lo, hi) => {
                    params.truncate(n);
                    params.push(SqlValue::Integer(lo));
                    params.push(SqlValue::Integer(hi));
                    let mut rows = range.query(params_from_iter(params.iter())).map_err(self.err())?;
                    while let Some(r) = rows.next().map_err(self.err())? {
                        delivered += 1;
                        if !cb(read_record(r).map_err(self.err())?)? {
                            return Ok(delivered);
                        }
                    }
                }
            }
        }
        Ok(delivered)
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
        self.verify_with(&VerifyOptions::default())
    }

    /// [`verify`](Self::verify) with a key and/or an expected head.
    pub fn verify_with(&self, opts: &VerifyOptions) -> Result<VerifyReport, AuditError> {
        let key = opts.key_file.as_deref().map(crate::keys::load_key).transpose()?;
        self.conn.execute_batch("BEGIN").map_err(self.err())?;
        let res = self.verify_inner(key, opts.expect_head);
        let _ = self.conn.execute_batch("COMMIT");
        res.map_err(self.err())
    }

    fn verify_inner(&self, key: Option<ChainHasher>, anchor_opt: Option<HeadAnchor>) -> rusqlite::Result<VerifyReport> {
        let c = &self.conn;
        let mut report = VerifyReport {
            records: 0,
            first_seq: 0,
            last_seq: 0,
            checkpoints: 0,
            head_seq: 0,
            head_hash: String::new(),
            chain: CHAIN_SHA256.into(),
            key_id: None,
            hashes_checked: true,
            anchor_checked: None,
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
        report.head_seq = head_seq.max(0) as u64;

        // 0. Chain mode: which hash, and whether we hold the key for it.
        use rusqlite::types::Value as V;
        let mode = match meta_get(c, "chain")? {
            None => CHAIN_SHA256.to_string(),
            Some(V::Text(t)) => t,
            Some(_) => String::new(),
        };
        report.chain = mode.clone();
        let stored_id = match meta_get(c, "key_id")? {
            Some(V::Text(t)) => Some(t),
            _ => None,
        };
        report.key_id = stored_id.clone();
        let hasher: Option<ChainHasher> = match (mode.as_str(), key) {
            (CHAIN_SHA256, None) => Some(ChainHasher::Sha256),
            (CHAIN_SHA256, Some(_)) => {
                report.problem = Some(bad(
                    ProblemKind::Key,
                    None,
                    "a key was given but this trail's chain is not keyed (meta.chain = sha256): it was created \
                     without audit.key_file, or a keyed trail was rewritten by someone without the key"
                        .into(),
                ));
                return Ok(report);
            }
            (CHAIN_HMAC, Some(k)) => {
                let given = k.key_id().unwrap_or_default().to_string();
                if stored_id.as_deref() != Some(given.as_str()) {
                    report.problem = Some(bad(
                        ProblemKind::Key,
                        None,
                        format!(
                            "wrong key: the trail was written under key id {}, the key file has key id {given} \
                             (or the trail was rewritten under another key)",
                            stored_id.as_deref().unwrap_or("(none recorded)")
                        ),
                    ));
                    return Ok(report);
                }
                Some(k)
            }
            // Keyed, no key: structure only.
            (CHAIN_HMAC, None) => {
                report.hashes_checked = false;
                None
            }
            (other, _) => {
                report.problem = Some(bad(ProblemKind::Key, None, format!("unknown chain mode {other:?} in meta")));
                return Ok(report);
            }
        };

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
                let mismatch = match &hasher {
                    Some(hs) => {
                        hs.checkpoint(&pv, &checkpoint_fields(id, ts, &reason, seq, &h, fs, &an))[..] != cph[..]
                    }
                    None => cph.len() != 32,
                };
                if mismatch {
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
            let stored = r.get_ref(N_HASHED)?;
            let h: Hash = match &hasher {
                Some(hs) => {
                    let h = hs.chain(&prev, &fields);
                    if stored.as_blob().ok() != Some(&h[..]) {
                        let describe = describe_row(&fields);
                        report.problem = Some(self.classify(hs, seq, &prev, describe)?);
                        report.records = (seq - first_seq) as u64;
                        return Ok(report);
                    }
                    h
                }
                // Structure only: take the stored hash as is; checkpoints and the head must agree with it.
                None => match stored.as_blob().ok().and_then(|b| <Hash>::try_from(b).ok()) {
                    Some(h) => h,
                    None => {
                        report.problem =
                            Some(bad(ProblemKind::Modified, Some(seq), "record hash is missing or malformed".into()));
                        return Ok(report);
                    }
                },
            };
            if let Some(a) = anchor_opt
                && a.seq as i64 == seq
                && a.hash != h
            {
                report.problem = Some(bad(
                    ProblemKind::Modified,
                    Some(seq),
                    format!(
                        "record {seq} has hash {}, but the recorded head was {}: the chain was rewritten from here or earlier",
                        hex::encode(h),
                        hex::encode(a.hash)
                    ),
                ));
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
        } else if let Some(a) = anchor_opt {
            let (aseq, last) = (a.seq as i64, expected - 1);
            if aseq > last {
                report.problem = Some(bad(
                    ProblemKind::Deleted,
                    Some(last + 1),
                    format!(
                        "the recorded head {aseq} is beyond the end of the trail (seq {last}): records were truncated and the chain head rewound"
                    ),
                ));
            } else if aseq < first_seq && !(aseq == first_seq - 1 && anchor == a.hash) {
                report.problem = Some(bad(
                    ProblemKind::Head,
                    Some(aseq),
                    format!(
                        "the recorded head {aseq} is before the first retained record {first_seq} (pruned by retention, or deleted), so it cannot be confirmed; record a newer head"
                    ),
                ));
            } else {
                report.anchor_checked = Some(format!("{}:{}", a.seq, hex::encode(a.hash)));
            }
        }
        Ok(report)
    }

    /// The link into `seq` is broken; look around it to say what happened.
    fn classify(&self, hs: &ChainHasher, seq: i64, prev: &Hash, describe: String) -> rusqlite::Result<Problem> {
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
        if let Some(k) = rows.iter().skip(1).position(|r| r.links(hs, prev, seq)).map(|k| k + 1) {
            let moved = &rows[k];
            // Swapped: the row now at `seq` links in at the other position.
            let prev_there: Vec<u8> = if k == 1 { moved.hash.clone() } else { rows[k - 1].hash.clone() };
            if let Ok(prev_there) = <Hash>::try_from(prev_there.as_slice())
                && cur.links(hs, &prev_there, moved.seq)
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
            && next.links(hs, &own, next.seq)
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
