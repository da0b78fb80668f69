//! A small, defensive DNS message parser for the datagrams the kernel copies:
//! the question, the response code and the A/AAAA/CNAME answers. Every
//! length and pointer is checked; compression loops are bounded.

use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub rcode: &'static str,
    pub qname: String,
    pub qtype: String,
    pub answers: Vec<DnsAnswer>,
    /// Responses: time since this process sent the query with the same id
    /// (set by enrichment; absent when the query was not seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsAnswer {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub ttl: u32,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    Short,
    BadName,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, DnsError> {
    b.get(off..off + 2).map(|s| u16::from_be_bytes([s[0], s[1]])).ok_or(DnsError::Short)
}

/// Reads a (possibly compressed) name at `off`; returns it and the offset
/// after the name in the original position.
fn read_name(b: &[u8], mut off: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *b.get(off).ok_or(DnsError::Short)? as usize;
        if len == 0 {
            return Ok((if name.is_empty() { ".".into() } else { name }, end.unwrap_or(off + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let ptr = (u16_at(b, off)? & 0x3fff) as usize;
            end.get_or_insert(off + 2);
            if ptr >= b.len() {
                return Err(DnsError::BadName);
            }
            off = ptr;
            continue;
        }
        if len & 0xc0 != 0 {
            return Err(DnsError::BadName);
        }
        let label = b.get(off + 1..off + 1 + len).ok_or(DnsError::Short)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &c in label {
            // keep names printable: a hostile label cannot inject control characters
            if c.is_ascii_graphic() && c != b'.' {
                name.push(c as char);
            } else {
                name.push_str(&format!("\\{c:03}"));
            }
        }
        if name.len() > 1024 {
            return Err(DnsError::BadName);
        }
        off += 1 + len;
    }
    Err(DnsError::BadName)
}

pub fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        other => format!("TYPE{other}"),
    }
}

fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "OTHER",
    }
}

pub fn parse(b: &[u8]) -> Result<DnsMessage, DnsError> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    let qdcount = u16_at(b, 4)?;
    let ancount = u16_at(b, 6)?;
    let mut off = 12;
    let (mut qname, mut qtype) = (String::new(), String::new());
    if qdcount > 0 {
        let (n, o) = read_name(b, off)?;
        qname = n;
        qtype = type_name(u16_at(b, o)?);
        off = o + 4;
        // only the first question is reported; skip the rest
        for _ in 1..qdcount.min(8) {
            let (_, o) = read_name(b, off)?;
            off = o + 4;
        }
    }
    let mut answers = Vec::new();
    for _ in 0..ancount.min(32) {
        let Ok((name, o)) = read_name(b, off) else { break };
        let (Ok(rtype), Ok(ttl_hi), Ok(ttl_lo), Ok(rdlen)) =
            (u16_at(b, o), u16_at(b, o + 4), u16_at(b, o + 6), u16_at(b, o + 8))
        else {
            break;
        };
        let rdata_off = o + 10;
        let Some(rdata) = b.get(rdata_off..rdata_off + rdlen as usize) else { break };
        let data = match (rtype, rdata.len()) {
            (1, 4) => IpAddr::from([rdata[0], rdata[1], rdata[2], rdata[3]]).to_string(),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                IpAddr::from(a).to_string()
            }
            (5, _) | (12, _) | (2, _) => read_name(b, rdata_off).map(|(n, _)| n).unwrap_or_default(),
            _ => String::new(),
        };
        answers.push(DnsAnswer { name, rtype: type_name(rtype), ttl: (ttl_hi as u32) << 16 | ttl_lo as u32, data });
        off = rdata_off + rdlen as usize;
    }
    Ok(DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        rcode: rcode_name((flags & 0xf) as u8),
        qname,
        qtype,
        answers,
        latency_ns: None,
    })
}

/// Builds a query message (used by tests and the benchmark's DNS workload).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b
}

/// Builds a response to `query` with one A record (tests and benchmark).
pub fn build_a_response(query: &[u8], addr: [u8; 4], rcode: u8) -> Vec<u8> {
    let mut b = query.to_vec();
    b[2] = 0x81;
    b[3] = 0x80 | (rcode & 0xf);
    if rcode == 0 {
        b[7] = 1; // ancount
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        b.extend_from_slice(&addr);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_response_round_trip() {
        let q = build_query(0x1234, "example.test", 1);
        let m = parse(&q).unwrap();
        assert_eq!((m.id, m.response, m.qname.as_str(), m.qtype.as_str()), (0x1234, false, "example.test", "A"));
        let r = parse(&build_a_response(&q, [10, 0, 0, 7], 0)).unwrap();
        assert!(r.response);
        assert_eq!(r.rcode, "NOERROR");
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].data, "10.0.0.7");
        assert_eq!(r.answers[0].name, "example.test");
        assert_eq!(r.answers[0].ttl, 60);
        let nx = parse(&build_a_response(&q, [0; 4], 3)).unwrap();
        assert_eq!(nx.rcode, "NXDOMAIN");
    }

    #[test]
    fn compression_loops_and_truncation_are_errors() {
        let mut q = build_query(1, "a.b", 1);
        // point the question name at itself
        q[12] = 0xc0;
        q[13] = 12;
        assert_eq!(parse(&q), Err(DnsError::BadName));
        assert_eq!(parse(&[0, 1, 2]), Err(DnsError::Short));
        let q = build_query(1, "abc.def", 28);
        assert!(parse(&q[..q.len() - 3]).is_err());
    }

    #[test]
    fn hostile_labels_are_escaped() {
        let mut q = build_query(1, "ab", 1);
        q[13] = b'\n';
        let m = parse(&q).unwrap();
        assert_eq!(m.qname, "\\010b");
    }
}
