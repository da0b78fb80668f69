//! L7 request tracking: the kernel hands over the first bytes of each read
//! and write on connections it classified (HTTP/1.x, Redis RESP, PostgreSQL);
//! here requests are matched to responses per connection, in order (keep-alive
//! and pipelining), giving method/command/statement, status, and latency.
//!
//! Every input byte is untrusted: parsing is bounded, lossy and never panics.
//! Connections are kept in an LRU and requests per connection are capped;
//! what falls off is counted.

use crate::decode::{Body, L7};
use crate::event::Event;
use lru::LruCache;
use sensor_bpf::wire::{L7_DIR_SEND, L7_PROTO_HTTP, L7_PROTO_PG, L7_PROTO_REDIS};
use serde::Deserialize;
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use topology::Protocol;

/// `[l7]` in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L7Config {
    /// Which completed requests become `http`/`redis`/`pg` events (for the
    /// stream, the audit trail and the rules): `all`, `errors` or `none`.
    /// The topology counts every request either way.
    pub emit: String,
    /// Connections tracked at once.
    pub max_connections: usize,
}

impl Default for L7Config {
    fn default() -> Self {
        L7Config { emit: "errors".into(), max_connections: 65_536 }
    }
}

impl L7Config {
    pub fn validate(&self) -> Result<(), String> {
        if !["all", "errors", "none"].contains(&self.emit.as_str()) {
            return Err(format!("emit must be all, errors or none, not {:?}", self.emit));
        }
        if self.max_connections < 16 {
            return Err("max_connections must be at least 16".into());
        }
        Ok(())
    }
}

const REQUESTS_PER_CONN: usize = 256;
const FIELD_MAX: usize = 200;

/// A request waiting for its response.
#[derive(Debug, Clone)]
struct Pending {
    ts_boot_ns: u64,
    what: Request,
    bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Http { method: String, path: String },
    Redis { command: String },
    Pg { statement: String },
}

/// A request and its response, seen by one end of the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub protocol: Protocol,
    pub sock_id: u64,
    /// This end sent the request (it is the client).
    pub client_side: bool,
    pub request: Request,
    /// HTTP status; 0 for other protocols.
    pub status: u16,
    pub failed: bool,
    /// RESP error text or PostgreSQL error message, bounded.
    pub error: Option<String>,
    pub latency_ns: u64,
    pub request_bytes: u32,
    pub response_bytes: u32,
}

struct Conn {
    protocol: u8,
    /// The direction requests travel from this end (send: client, receive: server).
    request_dir: Option<u8>,
    pending: VecDeque<Pending>,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct L7Stats {
    pub payloads: u64,
    pub requests: u64,
    pub completed: u64,
    /// Responses with no request waiting (the request predates the sensor).
    pub unmatched_responses: u64,
    /// Requests dropped because a connection had too many outstanding.
    pub requests_dropped: u64,
    pub connections_evicted: u64,
}

/// (pid, socket, local port, remote port): the ports tell a reused socket
/// address's new connection from the closed one.
type ConnKey = (u32, u64, u16, u16);

pub struct Tracker {
    conns: LruCache<ConnKey, Conn>,
    pub stats: L7Stats,
}

fn bounded(s: &str) -> String {
    s.chars().take(FIELD_MAX).collect()
}

fn lossy(b: &[u8]) -> String {
    bounded(&String::from_utf8_lossy(b))
}

const HTTP_METHODS: [&str; 9] = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];

/// Every HTTP request line in a payload: the first, and pipelined ones that
/// start right after a header block ends.
fn http_requests(b: &[u8]) -> Vec<Request> {
    let mut out = Vec::new();
    let mut rest = b;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap_or(rest.len());
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let mut parts = line.split(' ');
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else { break };
        if !HTTP_METHODS.contains(&method) {
            break;
        }
        let path = target.split(['?', '#']).next().unwrap_or("");
        out.push(Request::Http { method: method.to_string(), path: bounded(path) });
        match rest.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) if i + 4 < rest.len() => rest = &rest[i + 4..],
            _ => break,
        }
    }
    out
}

/// Status codes of every HTTP response starting in a payload (pipelined
/// responses without bodies follow each other directly).
fn http_statuses(b: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    let mut rest = b;
    while rest.starts_with(b"HTTP/1.") && rest.len() >= 12 {
        match std::str::from_utf8(&rest[9..12]).ok().and_then(|s| s.parse::<u16>().ok()) {
            Some(code) if (100..600).contains(&code) => out.push(code),
            _ => break,
        }
        // a following response only if this one has no body
        let headers_end = match rest.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(i) => i + 4,
            None => break,
        };
        let head = String::from_utf8_lossy(&rest[..headers_end]).to_ascii_lowercase();
        if !head.contains("content-length: 0\r\n") {
            break;
        }
        rest = &rest[headers_end..];
    }
    out
}

/// The command of a RESP array of bulk strings: `*2\r\n$3\r\nGET\r\n...`.
fn redis_command(b: &[u8]) -> Option<String> {
    if b.first() != Some(&b'*') {
        return None;
    }
    let mut lines = b.split(|&c| c == b'\n');
    lines.next()?;
    let len_line = lines.next()?;
    if len_line.first() != Some(&b'$') {
        return None;
    }
    let cmd = lines.next()?;
    let cmd = cmd.strip_suffix(b"\r").unwrap_or(cmd);
    let s = String::from_utf8_lossy(cmd).to_ascii_uppercase();
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')).then(|| bounded(&s))
}

/// PostgreSQL frontend messages that start a request: a simple query, or an
/// extended-protocol Parse. The startup message is no request.
fn pg_request(b: &[u8]) -> Option<String> {
    let body = |b: &[u8]| -> Option<Vec<u8>> {
        let len = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?) as usize;
        let end = (1 + len).min(b.len());
        b.get(5..end).map(|s| s.to_vec())
    };
    match b.first()? {
        b'Q' => {
            let q = body(b)?;
            Some(lossy(q.split(|&c| c == 0).next().unwrap_or(&[])))
        }
        b'P' => {
            let p = body(b)?;
            // statement name, NUL, query, NUL
            let mut parts = p.split(|&c| c == 0);
            parts.next()?;
            Some(lossy(parts.next().unwrap_or(&[])))
        }
        _ => None,
    }
}

/// The statement type of a SQL text: its first keyword, upper-cased.
pub fn statement_type(sql: &str) -> String {
    sql.split_whitespace().next().map(|w| w.to_ascii_uppercase()).unwrap_or_default()
}

/// The error of a PostgreSQL backend response, if its messages hold an
/// ErrorResponse: the 'M' (message) field.
fn pg_error(b: &[u8]) -> Option<String> {
    let mut rest = b;
    for _ in 0..32 {
        let ty = *rest.first()?;
        let len = u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?) as usize;
        if ty == b'E' {
            let body = &rest[5..(1 + len).min(rest.len())];
            let msg = body.split(|&c| c == 0).find(|f| f.first() == Some(&b'M')).map(|f| lossy(&f[1..]));
            return Some(msg.unwrap_or_else(|| "error".into()));
        }
        if len < 4 || 1 + len >= rest.len() {
            return None;
        }
        rest = &rest[1 + len..];
    }
    None
}

/// Replaces path segments that identify one object (numbers, UUIDs, long
/// hex or mixed tokens) by `{id}` and caps the depth, so 100k distinct URLs
/// of one endpoint are one template.
pub fn path_template(path: &str) -> String {
    let mut out = String::new();
    for (i, seg) in path.split('/').skip(1).enumerate() {
        if i == 8 {
            out.push_str("/...");
            break;
        }
        out.push('/');
        let digits = seg.bytes().filter(u8::is_ascii_digit).count();
        let hexish = seg.len() >= 16 && seg.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
        let token =
            seg.len() >= 8 && digits >= 2 && seg.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        if (!seg.is_empty() && digits == seg.len()) || hexish || token || seg.len() > 64 {
            out.push_str("{id}");
        } else {
            out.push_str(seg);
        }
    }
    if out.is_empty() { "/".into() } else { out }
}

impl Tracker {
    pub fn new(cfg: &L7Config) -> Self {
        Tracker {
            conns: LruCache::new(NonZeroUsize::new(cfg.max_connections.max(16)).expect("non-zero")),
            stats: L7Stats::default(),
        }
    }

    /// One payload; returns the requests it completed.
    pub fn observe(&mut self, pid: u32, ts_boot_ns: u64, l7: &L7) -> Vec<Completed> {
        self.stats.payloads += 1;
        // keyed by process too: after fork both ends share a socket, and
        // each process's reads and writes are its own stream
        let key = (pid, l7.sock_id, l7.sport, l7.dport);
        if !self.conns.contains(&key) && self.conns.len() == self.conns.cap().get() {
            self.conns.pop_lru();
            self.stats.connections_evicted += 1;
        }
        let conn = self.conns.get_or_insert_mut(key, || Conn {
            protocol: l7.protocol,
            request_dir: None,
            pending: VecDeque::new(),
        });
        let b = &l7.payload;
        let requests: Vec<Request> = match l7.protocol {
            L7_PROTO_HTTP => http_requests(b),
            L7_PROTO_REDIS => redis_command(b).map(|command| Request::Redis { command }).into_iter().collect(),
            L7_PROTO_PG => pg_request(b).map(|statement| Request::Pg { statement }).into_iter().collect(),
            _ => Vec::new(),
        };
        if !requests.is_empty() && conn.request_dir.is_none_or(|d| d == l7.direction) {
            conn.request_dir = Some(l7.direction);
            for what in requests {
                self.stats.requests += 1;
                if conn.pending.len() >= REQUESTS_PER_CONN {
                    conn.pending.pop_front();
                    self.stats.requests_dropped += 1;
                }
                conn.pending.push_back(Pending { ts_boot_ns, what, bytes: l7.total_len });
            }
            return Vec::new();
        }
        // the other direction: responses
        if conn.request_dir.is_none_or(|d| d == l7.direction) {
            return Vec::new();
        }
        let client_side = conn.request_dir == Some(L7_DIR_SEND);
        let outcomes: Vec<(u16, bool, Option<String>)> = match conn.protocol {
            L7_PROTO_HTTP => http_statuses(b).into_iter().map(|s| (s, s >= 500, None)).collect(),
            L7_PROTO_REDIS => match b.first() {
                Some(b'-') => {
                    let line = b.split(|&c| c == b'\r').next().unwrap_or(&[]);
                    vec![(0, true, Some(lossy(&line[1..])))]
                }
                Some(
                    b'+' | b':' | b'$' | b'*' | b'_' | b',' | b'#' | b'%' | b'~' | b'=' | b'(' | b'!' | b'|' | b'>',
                ) => {
                    vec![(0, false, None)]
                }
                _ => Vec::new(),
            },
            L7_PROTO_PG => match b.first() {
                // messages that answer a query; 'R'/'S'/'K' answer the startup
                Some(b'T' | b'D' | b'C' | b'E' | b'I' | b'1' | b'2' | b'n' | b't' | b'Z') => {
                    let err = pg_error(b);
                    vec![(0, err.is_some(), err)]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let mut done = Vec::new();
        for (status, failed, error) in outcomes {
            let Some(req) = conn.pending.pop_front() else {
                self.stats.unmatched_responses += 1;
                break;
            };
            self.stats.completed += 1;
            let protocol = match conn.protocol {
                L7_PROTO_REDIS => Protocol::Redis,
                L7_PROTO_PG => Protocol::Pg,
                _ => Protocol::Http,
            };
            done.push(Completed {
                protocol,
                sock_id: l7.sock_id,
                client_side,
                request: req.what,
                status,
                failed,
                error,
                latency_ns: ts_boot_ns.saturating_sub(req.ts_boot_ns),
                request_bytes: req.bytes,
                response_bytes: l7.total_len,
            });
        }
        done
    }
}

/// The JSON event of a completed request: the response's event (process,
/// addresses) with `type` set to the protocol and the request's fields.
pub fn to_event(ev: &Event, c: &Completed) -> serde_json::Value {
    let mut v = serde_json::to_value(ev).unwrap_or_default();
    let role = if c.client_side { "client" } else { "server" };
    let detail = match &c.request {
        Request::Http { method, path } => serde_json::json!({
            "role": role, "method": method, "path": path, "path_template": path_template(path),
            "status": c.status, "latency_ns": c.latency_ns,
            "request_bytes": c.request_bytes, "response_bytes": c.response_bytes,
        }),
        Request::Redis { command } => serde_json::json!({
            "role": role, "command": command, "error": c.error, "latency_ns": c.latency_ns,
        }),
        Request::Pg { statement } => serde_json::json!({
            "role": role, "statement_type": statement_type(statement), "query": statement,
            "error": c.error, "latency_ns": c.latency_ns,
        }),
    };
    if let Some(o) = v.as_object_mut() {
        o.remove("l7");
        o.insert("type".into(), c.protocol.name().into());
        o.insert("failed".into(), c.failed.into());
        o.insert(c.protocol.name().into(), detail);
    }
    v
}

/// Whether the body of an event is an L7 payload.
pub fn payload(ev: &Event) -> Option<&L7> {
    match &ev.body {
        Body::L7(l) => Some(l),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sensor_bpf::wire::L7_DIR_RECV;
    use std::net::IpAddr;

    fn l7(proto: u8, dir: u8, payload: &[u8]) -> L7 {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        L7 {
            sock_id: 7,
            family: 2,
            saddr: ip,
            sport: 1,
            daddr: ip,
            dport: 2,
            direction: dir,
            protocol: proto,
            total_len: payload.len() as u32,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn http_keep_alive_and_pipelining_match_in_order() {
        let mut t = Tracker::new(&L7Config::default());
        let reqs = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(t.observe(1, 100, &l7(L7_PROTO_HTTP, L7_DIR_SEND, reqs)).is_empty());
        let r1 =
            t.observe(1, 1_100, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
        assert_eq!(r1.len(), 1);
        assert_eq!(r1[0].request, Request::Http { method: "GET".into(), path: "/a".into() });
        assert_eq!((r1[0].status, r1[0].failed, r1[0].latency_ns, r1[0].client_side), (200, false, 1000, true));
        // a body chunk is no response
        assert!(t.observe(1, 1_200, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"more body")).is_empty());
        let r2 = t.observe(1, 3_100, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"HTTP/1.1 503 Busy\r\n\r\n"));
        assert_eq!((r2[0].status, r2[0].failed, r2[0].latency_ns), (503, true, 3000));
        assert_eq!(t.stats.requests, 2);
        // the server's end: requests arrive, responses leave
        let srv = t.observe(2, 10, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"POST /x HTTP/1.1\r\n\r\n"));
        assert!(srv.is_empty());
        let srv = t.observe(2, 60, &l7(L7_PROTO_HTTP, L7_DIR_SEND, b"HTTP/1.0 404 Not Found\r\n\r\n"));
        assert_eq!((srv[0].client_side, srv[0].status, srv[0].failed), (false, 404, false));
    }

    #[test]
    fn redis_and_pg_requests_and_errors() {
        let mut t = Tracker::new(&L7Config::default());
        t.observe(1, 0, &l7(L7_PROTO_REDIS, L7_DIR_SEND, b"*2\r\n$3\r\nget\r\n$1\r\nk\r\n"));
        let r = t.observe(1, 50, &l7(L7_PROTO_REDIS, L7_DIR_RECV, b"-WRONGTYPE Operation\r\n"));
        assert_eq!(r[0].request, Request::Redis { command: "GET".into() });
        assert_eq!((r[0].failed, r[0].error.as_deref()), (true, Some("WRONGTYPE Operation")));
        let mut q = vec![b'Q'];
        q.extend_from_slice(&(4u32 + 9).to_be_bytes());
        q.extend_from_slice(b"select 1\0");
        t.observe(3, 0, &l7(L7_PROTO_PG, L7_DIR_SEND, &q));
        let mut e = vec![b'E'];
        let fields = b"SERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        e.extend_from_slice(&(4 + fields.len() as u32).to_be_bytes());
        e.extend_from_slice(fields);
        e.extend_from_slice(&[b'Z', 0, 0, 0, 5, b'I']);
        let r = t.observe(3, 70, &l7(L7_PROTO_PG, L7_DIR_RECV, &e));
        assert_eq!(r[0].request, Request::Pg { statement: "select 1".into() });
        assert_eq!(r[0].error.as_deref(), Some("relation \"x\" does not exist"));
        assert_eq!(statement_type("  select 1"), "SELECT");
    }

    #[test]
    fn garbage_and_hostile_payloads_never_panic() {
        let mut t = Tracker::new(&L7Config::default());
        let inputs: [&[u8]; 8] =
            [b"", b"HTTP/1.", b"HTTP/1.1 9", b"*", b"*9\r\n$", b"Q\xff\xff\xff\xff", b"E\0\0\0\x01", b"GET"];
        for (i, b) in inputs.iter().enumerate() {
            for proto in [L7_PROTO_HTTP, L7_PROTO_REDIS, L7_PROTO_PG, 99] {
                for dir in [L7_DIR_SEND, L7_DIR_RECV] {
                    t.observe(i as u32, 0, &l7(proto, dir, b));
                }
            }
        }
        // responses with nothing pending are counted, not matched
        t.observe(500, 0, &l7(L7_PROTO_HTTP, L7_DIR_SEND, b"GET / HTTP/1.1\r\n\r\n"));
        t.observe(500, 1, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"HTTP/1.1 200 OK\r\n\r\n"));
        t.observe(500, 2, &l7(L7_PROTO_HTTP, L7_DIR_RECV, b"HTTP/1.1 200 OK\r\n\r\n"));
        assert_eq!(t.stats.unmatched_responses, 1);
    }

    #[test]
    fn path_templates_bound_cardinality() {
        assert_eq!(path_template("/users/12345/orders/9"), "/users/{id}/orders/{id}");
        assert_eq!(path_template("/o/3f2a9c1e-1111-2222-3333-444455556666"), "/o/{id}");
        assert_eq!(path_template("/files/a1b2c3d4e5f6"), "/files/{id}");
        assert_eq!(path_template("/api/v2/health"), "/api/v2/health");
        assert_eq!(path_template(""), "/");
        let distinct: std::collections::HashSet<String> =
            (0..100_000).map(|i| path_template(&format!("/item/{i}/view"))).collect();
        assert_eq!(distinct.len(), 1);
        assert_eq!(path_template("/a/b/c/d/e/f/g/h/i/j"), "/a/b/c/d/e/f/g/h/...");
    }
}
