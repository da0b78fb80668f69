//! Segment postings: the secondary indexes of schema v2.
//!
//! Records are appended to `records` (rowid = seq, no secondary B-tree index),
//! so an insert never touches a random page. Every `seg_rows` records form a
//! segment; when one is complete the writer stores, in one short transaction,
//!
//! - a `segments` row: seq range, min/max event time and per-1024-row time
//!   zones, so a time filter skips whole segments and zones;
//! - one `postings` row per distinct (column, value) in the segment, holding
//!   the delta-varint list of matching positions. The key starts with the
//!   segment number, so these inserts are appends too, and a lookup is one
//!   B-tree seek per segment.
//!
//! The newest, incomplete segment (the "tail", fewer than `seg_rows` records)
//! has no postings yet: queries scan it directly. The writer keeps the tail's
//! postings in memory as it commits rows, or rebuilds them from the table
//! after a restart, a crash or a v1 migration (see `store::Writer`).
//! Postings only narrow the search: every candidate row is re-checked against
//! the full filter, so they can never make a query return a wrong row.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, params};

use crate::record::{KIND_MARKER, Record};

/// Default records per segment (a new database stores its own value in `meta`).
pub(crate) const DEFAULT_SEG_ROWS: u64 = 32_768;
/// Records per time zone inside a segment.
pub(crate) const ZONE_ROWS: u64 = 1_024;

/// Posting column numbers (`postings.col`).
pub(crate) mod col {
    pub const TYPE: i64 = 0;
    pub const PID: i64 = 1;
    pub const UID: i64 = 2;
    pub const EXE: i64 = 3;
    pub const CONTAINER: i64 = 4;
    pub const PATH: i64 = 5;
    pub const DADDR: i64 = 6;
    pub const DPORT: i64 = 7;
    pub const RULE: i64 = 8;
    pub const SEVERITY: i64 = 9;
    /// Positions of the store's own marker rows (value 2). Their time is the
    /// wall clock when they were written, which can lie far from the events
    /// around them, so they are kept out of the time zones and found through
    /// this posting instead.
    pub const MARKER: i64 = 10;
    /// `path` and `exe` with their bytes reversed (stored as BLOBs), so a
    /// glob with a leading wildcard and a literal ending (`*/id_rsa`,
    /// `*.so`) is one range seek per segment, like a prefix glob. Segments
    /// from `meta.suffix_postings_from` on have them (older trails did not).
    pub const PATH_REV: i64 = 11;
    pub const EXE_REV: i64 = 12;
}

/// Bits in a segment's trigram map of one column (8 KiB).
pub(crate) const GRAM_BITS: usize = 1 << 16;

/// The bit of a 3-byte window in a trigram map.
pub(crate) fn gram_bit(w: &[u8]) -> usize {
    let x = u32::from(w[0]) | u32::from(w[1]) << 8 | u32::from(w[2]) << 16;
    (x.wrapping_mul(0x9E37_79B1) >> 16) as usize & (GRAM_BITS - 1)
}

/// The bits of every 3-byte window of `v` (none for values under 3 bytes).
pub(crate) fn gram_bits(v: &[u8]) -> impl Iterator<Item = usize> + '_ {
    v.windows(3).map(gram_bit)
}

/// `meta` key: the first segment number whose postings include the reversed columns.
pub(crate) const SUFFIX_POSTINGS_FROM: &str = "suffix_postings_from";

/// The indexed record columns in posting-column order, as selected from `records`.
pub(crate) const INDEXED_COLUMNS: &str = "type, pid, uid, exe, container, path, daddr, dport, rule, severity";
const N_INDEXED: usize = 10;

/// Segment number of a record (seq >= 1).
pub(crate) fn seg_of(seq: u64, seg_rows: u64) -> u64 {
    (seq.max(1) - 1) / seg_rows
}

/// First and last seq of a segment.
pub(crate) fn seg_bounds(seg: u64, seg_rows: u64) -> (u64, u64) {
    (seg * seg_rows + 1, (seg + 1) * seg_rows)
}

/// Posting keys in memory: col, tag (0 integer, 1 text), then the value:
/// the integer big-endian with its sign bit flipped, or the text bytes. Byte
/// order of these keys is SQLite's order of (col, val), so sorted keys are
/// appended to the B-tree in order.
fn int_key(out: &mut Vec<u8>, c: i64, v: i64) {
    out.clear();
    out.push(c as u8);
    out.push(0);
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

fn text_key(out: &mut Vec<u8>, c: i64, v: &[u8]) {
    out.clear();
    out.push(c as u8);
    out.push(1);
    out.extend_from_slice(v);
}

/// Tag 2: a BLOB holding `v` reversed byte by byte (SQLite orders BLOBs by memcmp).
fn reversed_key(out: &mut Vec<u8>, c: i64, v: &[u8]) {
    out.clear();
    out.push(c as u8);
    out.push(2);
    out.extend(v.iter().rev());
}

/// The smallest byte string greater than every string starting with `prefix`
/// (None when there is none: empty or all 0xFF).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut hi = prefix.to_vec();
    while let Some(last) = hi.pop() {
        if last < 0xFF {
            hi.push(last + 1);
            return Some(hi);
        }
    }
    None
}

/// FxHash-style multiply-rotate hasher: the keys are our own column values and
/// the map lives for one segment, so SipHash's DoS resistance buys nothing
/// here and costs a large share of the per-row indexing time.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ (rest.len() as u64) << 59);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// In-memory postings of one segment, filled row by row in seq order.
pub(crate) struct SegBuilder {
    pub seg: u64,
    first_seq: u64,
    rows: u64,
    map: FastMap<Box<[u8]>, Vec<u32>>,
    scratch: Vec<u8>,
    /// (min, max) event time per zone; (MAX, MIN) while a zone is empty.
    zones: Vec<(i64, i64)>,
    /// Trigram maps of the distinct `path` and `exe` values: a glob with
    /// wildcards at both ends (`*/needle/*`) skips every segment whose map
    /// lacks one of its literal's trigrams (see `reader::candidates`).
    grams: [Vec<u8>; 2],
}

impl SegBuilder {
    pub fn new(seg: u64, seg_rows: u64) -> SegBuilder {
        let nz = seg_rows.div_ceil(ZONE_ROWS) as usize;
        SegBuilder {
            seg,
            first_seq: seg_bounds(seg, seg_rows).0,
            rows: 0,
            map: FastMap::default(),
            scratch: Vec::with_capacity(256),
            zones: vec![(i64::MAX, i64::MIN); nz],
            grams: [vec![0u8; GRAM_BITS / 8], vec![0u8; GRAM_BITS / 8]],
        }
    }

    fn begin_row(&mut self, seq: u64, ts: i64, kind: i64) -> u32 {
        let off = (seq - self.first_seq) as u32;
        self.rows += 1;
        if kind == KIND_MARKER {
            self.int(col::MARKER, KIND_MARKER, off);
        } else {
            let z = &mut self.zones[(off as u64 / ZONE_ROWS) as usize];
            z.0 = z.0.min(ts);
            z.1 = z.1.max(ts);
        }
        off
    }

    /// Count the key in `scratch` at `off`; allocates only for a value new to
    /// the segment. Returns whether the value is new.
    #[inline]
    fn bump(&mut self, off: u32) -> bool {
        match self.map.get_mut(&self.scratch[..]) {
            Some(v) => {
                v.push(off);
                false
            }
            None => {
                self.map.insert(self.scratch.as_slice().into(), vec![off]);
                true
            }
        }
    }

    fn text(&mut self, c: i64, v: &[u8], off: u32) -> bool {
        text_key(&mut self.scratch, c, v);
        self.bump(off)
    }

    fn int(&mut self, c: i64, v: i64, off: u32) {
        int_key(&mut self.scratch, c, v);
        self.bump(off);
    }

    /// A text value, plus its reversed form and trigrams for the columns that have them.
    fn text_and_suffix(&mut self, c: i64, v: &[u8], off: u32) {
        let new = self.text(c, v, off);
        let (rev, map) = match c {
            col::PATH => (col::PATH_REV, 0),
            col::EXE => (col::EXE_REV, 1),
            _ => return,
        };
        if new {
            let grams = &mut self.grams[map];
            for b in gram_bits(v) {
                grams[b / 8] |= 1 << (b % 8);
            }
        }
        reversed_key(&mut self.scratch, rev, v);
        self.bump(off);
    }

    /// Add a committed record.
    pub fn add_record(&mut self, seq: u64, r: &Record) {
        let off = self.begin_row(seq, r.ts_ns, r.kind);
        for (c, v) in [
            (col::TYPE, r.typ()),
            (col::EXE, r.exe()),
            (col::CONTAINER, r.container()),
            (col::PATH, r.path()),
            (col::DADDR, r.daddr()),
            (col::RULE, r.rule()),
        ] {
            if let Some(v) = v {
                self.text_and_suffix(c, v.as_bytes(), off);
            }
        }
        for (c, v) in [(col::PID, r.pid), (col::UID, r.uid), (col::DPORT, r.dport), (col::SEVERITY, r.severity)] {
            if let Some(v) = v {
                self.int(c, v, off);
            }
        }
    }

    /// Add a row read back from `records` (columns: seq, ts_ns, kind, then [`INDEXED_COLUMNS`]).
    fn add_row(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let seq: i64 = r.get(0)?;
        let int_at = |i: usize| match r.get_ref(i) {
            Ok(ValueRef::Integer(t)) => t,
            _ => 0,
        };
        let off = self.begin_row(seq as u64, int_at(1), int_at(2));
        const COLS: [i64; N_INDEXED] = [
            col::TYPE,
            col::PID,
            col::UID,
            col::EXE,
            col::CONTAINER,
            col::PATH,
            col::DADDR,
            col::DPORT,
            col::RULE,
            col::SEVERITY,
        ];
        for (i, c) in COLS.iter().enumerate() {
            // Whatever storage class the row holds is what the query re-check compares against.
            match r.get_ref(3 + i)? {
                ValueRef::Integer(v) => self.int(*c, v, off),
                ValueRef::Text(t) => self.text_and_suffix(*c, t, off),
                _ => {}
            }
        }
        Ok(())
    }

    /// Rebuild from the table: rows `from..=to` (missing rows, e.g. pruned ones, are skipped).
    pub fn load(&mut self, conn: &Connection, from: u64, to: u64) -> rusqlite::Result<()> {
        let sql =
            format!("SELECT seq, ts_ns, kind, {INDEXED_COLUMNS} FROM records WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq");
        let mut st = conn.prepare_cached(&sql)?;
        let mut rows = st.query(params![from as i64, to as i64])?;
        while let Some(r) = rows.next()? {
            self.add_row(r)?;
        }
        Ok(())
    }

    /// Store the segment (call inside a transaction). An empty segment (all
    /// of its records pruned) stores nothing.
    pub fn write(self, conn: &Connection, seg_rows: u64) -> rusqlite::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let (first, last) = seg_bounds(self.seg, seg_rows);
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        let mut zones = Vec::with_capacity(self.zones.len() * 16);
        for (lo, hi) in &self.zones {
            zones.extend_from_slice(&lo.to_le_bytes());
            zones.extend_from_slice(&hi.to_le_bytes());
        }
        for (lo, hi) in &self.zones {
            if lo > hi {
                continue; // no events in this zone (only markers, or beyond the last row)
            }
            min_ts = min_ts.min(*lo);
            max_ts = max_ts.max(*hi);
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO segments (seg, first_seq, last_seq, rows, min_ts, max_ts, zones)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            self.seg as i64,
            first as i64,
            last as i64,
            self.rows as i64,
            min_ts,
            max_ts,
            zones
        ])?;
        let mut gram_st = conn.prepare_cached("INSERT OR REPLACE INTO grams (seg, col, bits) VALUES (?1, ?2, ?3)")?;
        for (c, bits) in [(col::PATH, &self.grams[0]), (col::EXE, &self.grams[1])] {
            gram_st.execute(params![self.seg as i64, c, bits])?;
        }
        let mut entries: Vec<(Box<[u8]>, Vec<u32>)> = self.map.into_iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut st =
            conn.prepare_cached("INSERT OR REPLACE INTO postings (seg, col, val, seqs) VALUES (?1, ?2, ?3, ?4)")?;
        let mut buf = Vec::new();
        for (k, offs) in entries {
            buf.clear();
            encode_offsets(&offs, &mut buf);
            let (c, tag, v) = (k[0] as i64, k[1], &k[2..]);
            if tag == 0 {
                let v = (u64::from_be_bytes(v.try_into().unwrap_or([0; 8])) ^ (1 << 63)) as i64;
                st.execute(params![self.seg as i64, c, v, &buf])?;
            } else if tag == 2 {
                st.execute(params![self.seg as i64, c, v, &buf])?;
            } else {
                // Text came from a String or from a TEXT column: bind it as text again.
                st.execute(params![self.seg as i64, c, String::from_utf8_lossy(v), &buf])?;
            }
        }
        Ok(())
    }
}

/// Ascending offsets as LEB128 deltas.
fn encode_offsets(offs: &[u32], out: &mut Vec<u8>) {
    let mut prev = 0u32;
    for (i, &o) in offs.iter().enumerate() {
        let mut d = if i == 0 { o } else { o - prev };
        prev = o;
        loop {
            let b = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
}

/// Inverse of [`encode_offsets`]; stops at the first malformed byte.
pub(crate) fn decode_offsets(buf: &[u8], out: &mut Vec<u32>) {
    let mut cur: u32 = 0;
    let mut d: u32 = 0;
    let mut shift = 0;
    let mut first = true;
    for &b in buf {
        if shift > 28 {
            return;
        }
        d |= ((b & 0x7f) as u32) << shift;
        if b & 0x80 != 0 {
            shift += 7;
            continue;
        }
        cur = if first { d } else { cur.saturating_add(d) };
        first = false;
        out.push(cur);
        d = 0;
        shift = 0;
    }
}

/// Parse the `zones` blob of a segment.
pub(crate) fn decode_zones(b: &[u8]) -> Vec<(i64, i64)> {
    b.chunks_exact(16)
        .map(|c| {
            let lo = i64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8]));
            let hi = i64::from_le_bytes(c[8..].try_into().unwrap_or([0; 8]));
            (lo, hi)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_roundtrip() {
        let offs = vec![0, 1, 2, 127, 128, 300, 16_383, 16_384, 1 << 20, u32::MAX];
        let mut buf = Vec::new();
        encode_offsets(&offs, &mut buf);
        let mut back = Vec::new();
        decode_offsets(&buf, &mut back);
        assert_eq!(back, offs);
        let mut junk = Vec::new();
        decode_offsets(&[0xff; 9], &mut junk);
        assert!(junk.is_empty());
    }

    #[test]
    fn key_order_is_sqlite_order() {
        let key = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            f(&mut v);
            v
        };
        let want = vec![
            key(&|o| int_key(o, 1, i64::MIN)),
            key(&|o| int_key(o, 1, -1)),
            key(&|o| int_key(o, 1, 5)),
            key(&|o| text_key(o, 1, b"a")),
            key(&|o| text_key(o, 1, b"ab")),
            key(&|o| text_key(o, 1, b"b")),
            key(&|o| int_key(o, 2, -7)),
        ];
        let mut got = want.clone();
        got.reverse();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(seg_of(1, 64), 0);
        assert_eq!(seg_of(64, 64), 0);
        assert_eq!(seg_of(65, 64), 1);
        assert_eq!(seg_bounds(1, 64), (65, 128));
    }
}
