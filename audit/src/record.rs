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
    pub json: String,
}

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}

/// Integers arrive as u64 from the kernel; they are stored bit-for-bit as i64.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => s.parse::<i64>().ok().or_else(|| s.parse::<u64>().ok().map(|u| u as i64)),
        _ => None,
    }
}

impl Record {
    /// Build from a sensor event. Never fails: missing or odd fields become NULL,
    /// a missing/unparseable `ts` becomes the time the store accepted the event.
    pub fn from_event(v: &Value, now_ns: i64) -> Record {
        Self::build(v, v, KIND_EVENT, v.get("type").and_then(Value::as_str).map(str::to_owned), now_ns)
    }

    /// Build from an alert; process/file/net columns come from the triggering event.
    pub fn from_alert(v: &Value, now_ns: i64) -> Record {
        let ev = v.get("event").filter(|e| e.is_object()).unwrap_or(v);
        let mut r = Self::build(v, ev, KIND_ALERT, Some("alert".into()), now_ns);
        r.rule = s(v.get("rule"));
        r.severity = v.get("severity").and_then(Value::as_str).and_then(Severity::parse).map(|s| s as i64);
        r
    }

    pub fn marker(typ: &str, json: Value, now_ns: i64) -> Record {
        Record {
            ts_ns: now_ns,
            kind: KIND_MARKER,
            typ: Some(typ.to_owned()),
            pid: None,
            uid: None,
            exe: None,
            container: None,
            path: None,
            daddr: None,
            dport: None,
            rule: None,
            severity: None,
            json: json.to_string(),
        }
    }

    fn build(top: &Value, ev: &Value, kind: i64, typ: Option<String>, now_ns: i64) -> Record {
        let proc_ = ev.get("process");
        let file = ev.get("file");
        let net = ev.get("net");
        Record {
            ts_ns: top.get("ts").and_then(Value::as_str).and_then(parse_rfc3339_ns).unwrap_or(now_ns),
            kind,
            typ,
            pid: int(proc_.and_then(|p| p.get("pid"))),
            uid: int(proc_.and_then(|p| p.get("uid"))),
            exe: s(proc_.and_then(|p| p.get("exe"))),
            container: s(proc_.and_then(|p| p.get("container_id"))),
            path: s(file.and_then(|f| f.get("path"))),
            daddr: s(net.and_then(|n| n.get("daddr"))),
            dport: int(net.and_then(|n| n.get("dport"))),
            rule: None,
            severity: None,
            // Serializing a serde_json::Value cannot fail (string keys only).
            json: serde_json::to_string(top).unwrap_or_else(|_| "null".into()),
        }
    }

    /// The hashed fields in column order (see [`HASHED_COLUMNS`]).
    pub fn fields(&self, seq: u64) -> [Field<'_>; N_HASHED] {
        fn t(v: &Option<String>) -> Field<'_> {
            v.as_deref().map_or(Field::Null, |s| Field::Text(s.as_bytes()))
        }
        fn i(v: Option<i64>) -> Field<'static> {
            v.map_or(Field::Null, Field::Int)
        }
        [
            Field::Int(seq as i64),
            Field::Int(self.ts_ns),
            Field::Int(self.kind),
            t(&self.typ),
            i(self.pid),
            i(self.uid),
            t(&self.exe),
            t(&self.container),
            t(&self.path),
            t(&self.daddr),
            i(self.dport),
            t(&self.rule),
            i(self.severity),
            Field::Text(self.json.as_bytes()),
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

fn put(h: &mut Sha256, f: &Field<'_>) {
    match *f {
        Field::Null => h.update([0u8]),
        Field::Int(i) => {
            h.update([1u8]);
            h.update(i.to_be_bytes());
        }
        Field::Real(x) => {
            h.update([2u8]);
            h.update(x.to_bits().to_be_bytes());
        }
        Field::Text(b) => {
            h.update([3u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
        Field::Blob(b) => {
            h.update([4u8]);
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    }
}

pub(crate) type Hash = [u8; 32];
pub(crate) const ZERO_HASH: Hash = [0u8; 32];

/// hash_n = SHA-256("sensor-audit-rec-v1" || hash_{n-1} || canonical(fields_n)).
pub(crate) fn chain_hash(prev: &Hash, fields: &[Field<'_>]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"sensor-audit-rec-v1");
    h.update(prev);
    for f in fields {
        put(&mut h, f);
    }
    h.finalize().into()
}

/// Checkpoints are chained separately with their own domain tag.
pub(crate) fn checkpoint_hash(prev: &Hash, fields: &[Field<'_>]) -> Hash {
    let mut h = Sha256::new();
    h.update(b"sensor-audit-cp-v1");
    h.update(prev);
    for f in fields {
        put(&mut h, f);
    }
    h.finalize().into()
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
        assert_eq!(r.path.as_deref(), Some("/etc/shadow"));
        assert_eq!(r.container, None);

        for junk in [json!(42), json!(null), json!({"process":"x","ts":5,"net":{"dport":"x"}})] {
            let r = Record::from_event(&junk, 7);
            assert_eq!((r.ts_ns, r.pid, r.dport, r.typ), (7, None, None, None));
        }
        let big = json!({"process":{"pid": u64::MAX}});
        assert_eq!(Record::from_event(&big, 0).pid, Some(-1));

        let alert = json!({"type":"alert","rule":"read_shadow","severity":"HIGH",
            "event":{"type":"open","process":{"pid":9},"net":{"daddr":"1.2.3.4","dport":443}}});
        let r = Record::from_alert(&alert, 1);
        assert_eq!(r.typ.as_deref(), Some("alert"));
        assert_eq!(r.severity, Some(Severity::High as i64));
        assert_eq!((r.pid, r.dport), (Some(9), Some(443)));
        assert_eq!(r.daddr.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn hash_distinguishes_types_and_order() {
        let a = chain_hash(&ZERO_HASH, &[Field::Int(1), Field::Text(b"1")]);
        let b = chain_hash(&ZERO_HASH, &[Field::Text(b"1"), Field::Int(1)]);
        let c = chain_hash(&ZERO_HASH, &[Field::Int(1), Field::Blob(b"1")]);
        assert!(a != b && a != c && b != c);
    }
}
