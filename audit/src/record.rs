//! One stored row: the indexed columns pulled out of the event JSON, and the
//! canonical encoding that the hash chain covers.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::time::parse_rfc3339_ns;

/// Row kinds (the `kind` column).
pub const KIND_EVENT: i64 = 0;
pub const KIND_ALERT: i64 = 1;
/// Rows the store writes about itself (drops, recovery after disk full).
pub const KIND_MARKER: i64 = 2;

/// Alert severity, ordered so `--severity high` means "high or worse".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info = 0,
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

impl Severity {
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "info" | "informational" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
    pub fn from_rank(r: i64) -> Option<Severity> {
        Some(match r {
            0 => Severity::Info,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            4 => Severity::Critical,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A row ready to be inserted (built on the caller's thread so the single
/// writer thread only binds and hashes).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub ts_ns: i64,
    pub kind: i64,
    pub pid: Option<i64>,
    pub uid: Option<i64>,
    pub dport: Option<i64>,
    pub severity: Option<i64>,
    text: PackedText,
}

/// The row's JSON followed by its text columns, in one allocation (the
/// JSON's own). Seven strings per record made allocation about half of the
/// producer's time, and the indexer thread frees what the producer allocated.
#[derive(Debug, Clone)]
struct PackedText {
    buf: String,
    /// End of the JSON, then of each text column in [`TEXT_COLUMNS`] order.
    ends: [u32; 1 + TEXT_COLUMNS],
    /// Bit i: text column i is present (not NULL).
    present: u8,
}

/// type, exe, container, path, daddr, rule.
const TEXT_COLUMNS: usize = 6;

impl PackedText {
    fn new(json: String, cols: [Option<&str>; TEXT_COLUMNS]) -> PackedText {
        let mut buf = json;
        buf.reserve(cols.iter().flatten().map(|c| c.len()).sum());
        let mut ends = [0u32; 1 + TEXT_COLUMNS];
        let mut present = 0u8;
        // A row over 4 GiB cannot reach here (events are bounded far below that).
        ends[0] = buf.len() as u32;
        for (i, c) in cols.iter().enumerate() {
            if let Some(c) = c {
                buf.push_str(c);
                present |= 1 << i;
            }
            ends[i + 1] = buf.len() as u32;
        }
        PackedText { buf, ends, present }
    }

    fn json(&self) -> &str {
        &self.buf[..self.ends[0] as usize]
    }

    fn column(&self, i: usize) -> Option<&str> {
        (self.present & (1 << i) != 0).then(|| &self.buf[self.ends[i] as usize..self.ends[i + 1] as usize])
    }
}

/// Integers arrive as u64 from the kernel; they are stored bit-for-bit as i64.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| s.parse::<u64>().ok().map(|u| u as i64)),
        _ => None,
    }
}

/// The indexed columns of one event, read by the caller from its own typed
/// event, so that storing it costs no JSON lookups and no second
/// serialization (see [`crate::AuditStore::record_event_with`]). Each field
/// must hold what the event's JSON says at the same place (`ts`, `type`,
/// `process.pid`, `process.uid`, `process.exe`, `process.container_id`,
/// `file.path`, `net.daddr`, `net.dport`); [`EventColumns::from_json`] is the
/// reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventColumns<'a> {
    /// Event time, ns since the Unix epoch (None: the time the store accepts it).
    pub ts_ns: Option<i64>,
    pub typ: Option<&'a str>,
    pub pid: Option<i64>,
    pub uid: Option<i64>,
    pub exe: Option<&'a str>,
    pub container: Option<&'a str>,
    pub path: Option<&'a str>,
    pub daddr: Option<std::borrow::Cow<'a, str>>,
    pub dport: Option<i64>,
    /// An `open` that neither writes, creates nor truncates (for `read_opens`).
    pub read_only_open: bool,
}

/// An open that neither writes, creates nor truncates (per the event's flag names).
fn is_read_only_open(ev: &Value) -> bool {
    let Some(flags) = ev.pointer("/file/flags").and_then(Value::as_array) else { return false };
    !flags.iter().any(|f| matches!(f.as_str(), Some("O_WRONLY" | "O_RDWR" | "O_CREAT" | "O_TRUNC" | "O_TMPFILE")))
}

impl<'a> EventColumns<'a> {
    /// The columns of an event given as JSON (the store's generic path).
    pub fn from_json(v: &'a Value) -> EventColumns<'a> {
        let proc_ = v.get("process");
        let file = v.get("file");
        let net = v.get("net");
        let text = |o: Option<&'a Value>, k: &str| o.and_then(|o| o.get(k)).and_then(Value::as_str);
        let typ = v.get("type").and_then(Value::as_str);
        EventColumns {
            ts_ns: v.get("ts").and_then(Value::as_str).and_then(parse_rfc3339_ns),
            typ,
            pid: int(proc_.and_then(|p| p.get("pid"))),
            uid: int(proc_.and_then(|p| p.get("uid"))),
            exe: text(proc_, "exe"),
            container: text(proc_, "container_id"),
            path: text(file, "path"),
            daddr: text(net, "daddr").map(std::borrow::Cow::Borrowed),
            dport: int(net.and_then(|n| n.get("dport"))),
            read_only_open: typ == Some("open") && is_read_only_open(v),
        }
    }
}

// Serializing a serde_json::Value cannot fail (string keys only).
fn to_json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl Record {
    /// Build from an event's columns and its JSON (already serialized by the caller).
    pub fn from_columns(c: &EventColumns<'_>, json: String, now_ns: i64) -> Record {
        Self::build(c, KIND_EVENT, None, json, now_ns)
    }

    fn build(c: &EventColumns<'_>, kind: i64, rule: Option<&str>, json: String, now_ns: i64) -> Record {
        Record {
            ts_ns: c.ts_ns.unwrap_or(now_ns),
            kind,
            pid: c.pid,
            uid: c.uid,
            dport: c.dport,
            severity: None,
            text: PackedText::new(json, [c.typ, c.exe, c.container, c.path, c.daddr.as_deref(), rule]),
        }
    }

    /// Build from a sensor event. Never fails: missing or odd fields become NULL,
    /// a missing/unparseable `ts` becomes the time the store accepted the event.
    #[cfg(test)]
    pub fn from_event(v: &Value, now_ns: i64) -> Record {
        Self::from_columns(&EventColumns::from_json(v), to_json(v), now_ns)
    }

    /// Build from an alert; process/file/net columns come from the triggering event.
    pub fn from_alert(v: &Value, now_ns: i64) -> Record {
        let ev = v.get("event").filter(|e| e.is_object()).unwrap_or(v);
        let cols = EventColumns {
            ts_ns: v.get("ts").and_then(Value::as_str).and_then(parse_rfc3339_ns),
            typ: Some("alert"),
            ..EventColumns::from_json(ev)
        };
        let rule = v.get("rule").and_then(Value::as_str);
        let mut r = Self::build(&cols, KIND_ALERT, rule, to_json(v), now_ns);
        r.severity = v.get("severity").and_then(Value::as_str).and_then(Severity::parse).map(|s| s as i64);
        r
    }

    pub fn marker(typ: &str, json: Value, now_ns: i64) -> Record {
        let cols = EventColumns { ts_ns: Some(now_ns), typ: Some(typ), ..Default::default() };
        Self::build(&cols, KIND_MARKER, None, json.to_string(), now_ns)
    }

    pub fn typ(&self) -> Option<&str> {
        self.text.column(0)
    }
    pub fn exe(&self) -> Option<&str> {
        self.text.column(1)
    }
    pub fn container(&self) -> Option<&str> {
        self.text.column(2)
    }
    pub fn path(&self) -> Option<&str> {
        self.text.column(3)
    }
    pub fn daddr(&self) -> Option<&str> {
        self.text.column(4)
    }
    pub fn rule(&self) -> Option<&str> {
        self.text.column(5)
    }
    pub fn json(&self) -> &str {
        self.text.json()
    }

    /// The hashed fields in column order (see [`HASHED_COLUMNS`]).
    pub fn fields(&self, seq: u64) -> [Field<'_>; N_HASHED] {
        fn t(v: Option<&str>) -> Field<'_> {
            v.map_or(Field::Null, |s| Field::Text(s.as_bytes()))
        }
        fn i(v: Option<i64>) -> Field<'static> {
            v.map_or(Field::Null, Field::Int)
        }
        [
            Field::Int(seq as i64),
            Field::Int(self.ts_ns),
            Field::Int(self.kind),
            t(self.typ()),
            i(self.pid),
            i(self.uid),
            t(self.exe()),
            t(self.container()),
            t(self.path()),
            t(self.daddr()),
            i(self.dport),
            t(self.rule()),
            i(self.severity),
            Field::Text(self.json().as_bytes()),
        ]
    }
}

/// Columns covered by the record hash, in hashing order. Every stored column
/// except `hash` itself is covered, so editing an indexed column (not just the
/// JSON) is detected too.
pub(crate) const HASHED_COLUMNS: &str =
    "seq, ts_ns, kind, type, pid, uid, exe, container, path, daddr, dport, rule, severity, json";
pub(crate) const N_HASHED: usize = 14;

/// A typed SQLite value. The verifier hashes whatever type it finds, so a
/// tamperer changing a column's storage class (e.g. pid '1' vs 1) is caught.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl<'a> From<rusqlite::types::ValueRef<'a>> for Field<'a> {
    fn from(v: rusqlite::types::ValueRef<'a>) -> Self {
        use rusqlite::types::ValueRef as V;
        match v {
            V::Null => Field::Null,
            V::Integer(i) => Field::Int(i),
            V::Real(f) => Field::Real(f),
            V::Text(t) => Field::Text(t),
            V::Blob(b) => Field::Blob(b),
        }
    }
}

/// Appends one field's canonical encoding: a type tag, then the value
/// (integers big-endian, text and blobs length-prefixed).
fn put(out: &mut Vec<u8>, f: &Field<'_>) {
    match *f {
        Field::Null => out.push(0),
        Field::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Field::Real(x) => {
            out.push(2);
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Field::Text(b) => {
            out.push(3);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
        Field::Blob(b) => {
            out.push(4);
            out.extend_from_slice(&(b.len() as u64).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
}

thread_local! {
    /// The message being hashed, assembled in one buffer: SHA-256 then
    /// consumes whole blocks straight from it instead of copying each small
    /// field into its block buffer (a measurable share of the writer's time).
    static MESSAGE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(2048));
}

pub(crate) type Hash = [u8; 32];
pub(crate) const ZERO_HASH: Hash = [0u8; 32];

const REC_TAG: &[u8] = b"sensor-audit-rec-v1";
const CP_TAG: &[u8] = b"sensor-audit-cp-v1";

/// How record and checkpoint hashes are computed: plain SHA-256 (anyone can
/// recompute a rewritten chain) or HMAC-SHA256 under a secret key (only the
/// key holder can). The message is the same in both modes:
/// tag || previous hash || canonical(fields).
#[derive(Clone)]
pub(crate) enum ChainHasher {
    Sha256,
    /// Inner and outer SHA-256 states with the padded key already absorbed
    /// (HMAC per RFC 2104), so each record costs one clone of each.
    Hmac {
        inner: Box<Sha256>,
        outer: Box<Sha256>,
        key_id: String,
    },
}

impl std::fmt::Debug for ChainHasher {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainHasher::Sha256 => f.write_str("Sha256"),
            ChainHasher::Hmac { key_id, .. } => write!(f, "HmacSha256(key id {key_id})"),
        }
    }
}

impl ChainHasher {
    /// HMAC-SHA256 under `key` (any length; keys longer than a block are hashed first).
    pub fn keyed(key: &[u8]) -> ChainHasher {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        let mut outer = Sha256::new();
        outer.update(block.map(|b| b ^ 0x5c));
        block.fill(0);
        let mut h = ChainHasher::Hmac { inner: Box::new(inner), outer: Box::new(outer), key_id: String::new() };
        // A public fingerprint of the key: lets `verify` tell a wrong key from tampering
        // without revealing anything about the key itself.
        let id = h.mac(|m| m.update(b"sensor-audit-key-id-v1"));
        if let ChainHasher::Hmac { key_id, .. } = &mut h {
            *key_id = hex::encode(&id[..8]);
        }
        h
    }

    pub fn is_keyed(&self) -> bool {
        matches!(self, ChainHasher::Hmac { .. })
    }

    /// The key fingerprint (None when unkeyed).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            ChainHasher::Sha256 => None,
            ChainHasher::Hmac { key_id, .. } => Some(key_id),
        }
    }

    /// The value stored in the `meta` table for this mode.
    pub fn mode(&self) -> &'static str {
        if self.is_keyed() { CHAIN_HMAC } else { CHAIN_SHA256 }
    }

    fn mac(&self, feed: impl FnOnce(&mut Sha256)) -> Hash {
        match self {
            ChainHasher::Sha256 => {
                let mut h = Sha256::new();
                feed(&mut h);
                h.finalize().into()
            }
            ChainHasher::Hmac { inner, outer, .. } => {
                let mut i = (**inner).clone();
                feed(&mut i);
                let mut o = (**outer).clone();
                o.update(i.finalize());
                o.finalize().into()
            }
        }
    }

    /// hash_n = H(tag || hash_{n-1} || canonical(fields_n)), H = SHA-256 or HMAC-SHA256(key, .).
    pub fn chain(&self, prev: &Hash, fields: &[Field<'_>]) -> Hash {
        self.tagged(REC_TAG, prev, fields)
    }

    /// Checkpoints are chained separately with their own domain tag.
    pub fn checkpoint(&self, prev: &Hash, fields: &[Field<'_>]) -> Hash {
        self.tagged(CP_TAG, prev, fields)
    }

    fn tagged(&self, tag: &[u8], prev: &Hash, fields: &[Field<'_>]) -> Hash {
        MESSAGE.with_borrow_mut(|msg| {
            msg.clear();
            msg.extend_from_slice(tag);
            msg.extend_from_slice(prev);
            // The last field (a record's JSON) is usually most of the message:
            // its type and length go into the buffer, its bytes are hashed in place.
            let (body, tail) = match fields.split_last() {
                Some((Field::Text(b), rest)) => (rest, Some((3u8, *b))),
                Some((Field::Blob(b), rest)) => (rest, Some((4u8, *b))),
                _ => (fields, None),
            };
            for f in body {
                put(msg, f);
            }
            if let Some((type_byte, bytes)) = tail {
                msg.push(type_byte);
                msg.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            }
            let h = self.mac(|h| {
                h.update(&msg[..]);
                if let Some((_, bytes)) = tail {
                    h.update(bytes);
                }
            });
            // Do not keep a huge event's buffer for the thread's lifetime.
            if msg.capacity() > 1 << 20 {
                *msg = Vec::with_capacity(2048);
            }
            h
        })
    }
}

/// `meta.chain` values.
pub(crate) const CHAIN_SHA256: &str = "sha256";
pub(crate) const CHAIN_HMAC: &str = "hmac-sha256";

/// Unkeyed record hash (tests and callers that know the chain is unkeyed).
#[cfg(test)]
pub(crate) fn chain_hash(prev: &Hash, fields: &[Field<'_>]) -> Hash {
    ChainHasher::Sha256.chain(prev, fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_columns_and_tolerates_garbage() {
        let ev = json!({"ts":"2026-11-25T17:04:41.123456789Z","type":"open",
            "process":{"pid":42,"uid":1000,"exe":"/usr/bin/cat","container_id":null},
            "file":{"path":"/etc/shadow"}});
        let r = Record::from_event(&ev, 7);
        assert_eq!(r.ts_ns, parse_rfc3339_ns("2026-11-25T17:04:41.123456789Z").unwrap());
        assert_eq!((r.pid, r.uid), (Some(42), Some(1000)));
        assert_eq!(r.path(), Some("/etc/shadow"));
        assert_eq!(r.container(), None);

        for junk in [json!(42), json!(null), json!({"process":"x","ts":5,"net":{"dport":"x"}})] {
            let r = Record::from_event(&junk, 7);
            assert_eq!((r.ts_ns, r.pid, r.dport, r.typ()), (7, None, None, None));
        }
        let big = json!({"process":{"pid": u64::MAX}});
        assert_eq!(Record::from_event(&big, 0).pid, Some(-1));

        let alert = json!({"type":"alert","rule":"read_shadow","severity":"HIGH",
            "event":{"type":"open","process":{"pid":9},"net":{"daddr":"1.2.3.4","dport":443}}});
        let r = Record::from_alert(&alert, 1);
        assert_eq!(r.typ(), Some("alert"));
        assert_eq!(r.severity, Some(Severity::High as i64));
        assert_eq!((r.pid, r.dport), (Some(9), Some(443)));
        assert_eq!(r.daddr(), Some("1.2.3.4"));
    }

    #[test]
    fn hmac_matches_rfc4231() {
        // RFC 4231 test cases 1 (short key) and 6 (key longer than a block).
        let h = ChainHasher::keyed(&[0x0b; 20]);
        assert_eq!(
            hex::encode(h.mac(|m| m.update(b"Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let h = ChainHasher::keyed(&[0xaa; 131]);
        assert_eq!(
            hex::encode(h.mac(|m| m.update(b"Test Using Larger Than Block-Size Key - Hash Key First"))),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert!(format!("{h:?}").starts_with("HmacSha256(key id "));
        let f = [Field::Int(1)];
        assert_ne!(h.chain(&ZERO_HASH, &f), ChainHasher::Sha256.chain(&ZERO_HASH, &f));
        assert_ne!(h.chain(&ZERO_HASH, &f), ChainHasher::keyed(&[0xab; 131]).chain(&ZERO_HASH, &f));
    }

    #[test]
    fn hash_distinguishes_types_and_order() {
        let a = chain_hash(&ZERO_HASH, &[Field::Int(1), Field::Text(b"1")]);
        let b = chain_hash(&ZERO_HASH, &[Field::Text(b"1"), Field::Int(1)]);
        let c = chain_hash(&ZERO_HASH, &[Field::Int(1), Field::Blob(b"1")]);
        assert!(a != b && a != c && b != c);
    }
}
