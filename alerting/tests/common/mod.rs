//! Real receivers on 127.0.0.1 for the tests and the benchmark: a small
//! HTTP/1.1 server with scripted failures and RFC 5424 syslog listeners
//! (UDP, TCP with octet counting, TCP+TLS).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-cased header names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(|s| s.as_str())
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// 429 with `Retry-After: <secs>`.
    TooMany(u64),
    /// Drop the connection without answering.
    Close,
    /// Answer 200 after a delay.
    Slow(Duration),
}

pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

pub struct HttpServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    pub async fn start(handler: Handler) -> HttpServer {
        Self::start_on("127.0.0.1:0", handler).await
    }

    pub async fn start_on(addr: &str, handler: Handler) -> HttpServer {
        let listener = TcpListener::bind(addr).await.expect("bind http");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let _ = sock.set_nodelay(true);
                let h = handler.clone();
                tokio::spawn(async move {
                    let _ = serve_conn(sock, h).await;
                });
            }
        });
        HttpServer { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_conn(sock: tokio::net::TcpStream, h: Handler) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).await? == 0 {
                return Ok(());
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await?;
        let req = Request { method, path, headers, body, at: Instant::now() };
        let (status, extra) = match h(&req) {
            Reply::Close => return Ok(()),
            Reply::Status(s) => (s, String::new()),
            Reply::TooMany(secs) => (429, format!("Retry-After: {secs}\r\n")),
            Reply::Slow(d) => {
                tokio::time::sleep(d).await;
                (200, String::new())
            }
        };
        let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n{extra}\r\nok");
        w.write_all(resp.as_bytes()).await?;
    }
}

/// Records every request; answers according to `script` for the first
/// requests (in arrival order), then 200.
pub fn scripted(script: Vec<Reply>, log: Arc<Mutex<Vec<(Request, Reply)>>>) -> Handler {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Arc::new(move |req: &Request| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let reply = script.get(i).cloned().unwrap_or(Reply::Status(200));
        log.lock().unwrap().push((req.clone(), reply.clone()));
        reply
    })
}

// ---------------------------------------------------------------- syslog

#[derive(Debug, Clone, PartialEq)]
pub struct Syslog5424 {
    pub pri: u16,
    pub version: u8,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// (sd-id, params)
    pub sd: Vec<(String, Vec<(String, String)>)>,
    pub msg: String,
}

/// Strict-enough RFC 5424 parser for assertions.
pub fn parse_5424(s: &str) -> Result<Syslog5424, String> {
    let rest = s.strip_prefix('<').ok_or("no PRI")?;
    let (pri, rest) = rest.split_once('>').ok_or("PRI not closed")?;
    let pri: u16 = pri.parse().map_err(|_| "PRI not a number")?;
    if pri > 191 {
        return Err("PRI out of range".into());
    }
    let mut it = rest.splitn(7, ' ');
    let version: u8 = it.next().ok_or("no version")?.parse().map_err(|_| "bad version")?;
    let timestamp = it.next().ok_or("no timestamp")?.to_string();
    if timestamp != "-" {
        chrono::DateTime::parse_from_rfc3339(&timestamp).map_err(|e| format!("timestamp: {e}"))?;
    }
    let mut hdr = Vec::new();
    for name in ["hostname", "app", "procid", "msgid"] {
        let f = it.next().ok_or(format!("no {name}"))?;
        if f.is_empty() || !f.chars().all(|c| ('!'..='~').contains(&c)) {
            return Err(format!("{name} not PRINTUSASCII: {f:?}"));
        }
        hdr.push(f.to_string());
    }
    let rest = it.next().ok_or("no SD")?;
    let mut sd = Vec::new();
    let msg;
    if let Some(r) = rest.strip_prefix('-') {
        msg = r.strip_prefix(' ').unwrap_or(r).to_string();
    } else {
        let chars: Vec<char> = rest.chars().collect();
        let mut i = 0;
        while i < chars.len() && chars[i] == '[' {
            i += 1;
            let start = i;
            while i < chars.len() && chars[i] != ' ' && chars[i] != ']' {
                i += 1;
            }
            let id: String = chars[start..i].iter().collect();
            let mut params = Vec::new();
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
                let ks = i;
                while i < chars.len() && chars[i] != '=' {
                    i += 1;
                }
                let key: String = chars[ks..i].iter().collect();
                i += 1;
                if chars.get(i) != Some(&'"') {
                    return Err("SD param value not quoted".into());
                }
                i += 1;
                let mut val = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    val.push(chars[i]);
                    i += 1;
                }
                i += 1;
                params.push((key, val));
            }
            if chars.get(i) != Some(&']') {
                return Err("SD element not closed".into());
            }
            i += 1;
            sd.push((id, params));
        }
        let r: String = chars[i..].iter().collect();
        msg = r.strip_prefix(' ').unwrap_or(&r).to_string();
    }
    Ok(Syslog5424 {
        pri,
        version,
        timestamp,
        hostname: hdr[0].clone(),
        app_name: hdr[1].clone(),
        procid: hdr[2].clone(),
        msgid: hdr[3].clone(),
        sd,
        msg,
    })
}

pub type Messages = Arc<Mutex<Vec<String>>>;

pub async fn udp_listener() -> (SocketAddr, Messages) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let msgs: Messages = Default::default();
    let m = msgs.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf).await {
            m.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (addr, msgs)
}

/// Reads RFC 6587 octet-counted frames from a stream.
pub async fn read_frames<R: AsyncRead + Unpin>(r: R, on_msg: impl Fn(String) + Send) -> std::io::Result<()> {
    let mut r = BufReader::new(r);
    loop {
        let mut len = Vec::new();
        if r.read_until(b' ', &mut len).await? == 0 {
            return Ok(());
        }
        let n: usize = std::str::from_utf8(&len[..len.len() - 1])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad octet count"))?;
        let mut msg = vec![0u8; n];
        r.read_exact(&mut msg).await?;
        on_msg(String::from_utf8(msg).map_err(std::io::Error::other)?);
    }
}

pub async fn tcp_listener_with(on_msg: Arc<dyn Fn(String) + Send + Sync>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let f = on_msg.clone();
            tokio::spawn(async move {
                let _ = read_frames(s, move |m| f(m)).await;
            });
        }
    });
    addr
}

pub async fn tcp_listener() -> (SocketAddr, Messages) {
    let msgs: Messages = Default::default();
    let m = msgs.clone();
    let addr = tcp_listener_with(Arc::new(move |s| m.lock().unwrap().push(s))).await;
    (addr, msgs)
}

/// TLS syslog listener with a fresh self-signed cert for "localhost";
/// returns the CA PEM to trust.
pub async fn tls_listener() -> (SocketAddr, Messages, String) {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = ck.cert.pem();
    let cert = ck.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let msgs: Messages = Default::default();
    let m = msgs.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acc = acceptor.clone();
            let m = m.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acc.accept(s).await {
                    let _ = read_frames(tls, move |x| m.lock().unwrap().push(x)).await;
                }
            });
        }
    });
    (addr, msgs, cert_pem)
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// A sample alert with a process event.
pub fn sample(rule: &str, sev: alerting::Severity, exe: &str) -> alerting::Alert {
    let mut a = alerting::Alert::new(rule, sev);
    a.title = format!("{rule} fired");
    a.message = format!("{exe} did something");
    a.host = "node-1".into();
    a.mitre = vec!["T1059".into()];
    a.event = serde_json::json!({
        "process": {"exe": exe, "pid": 4242, "comm": "sh", "args": ["sh", "-c", "id"], "container_id": "c0ffee"},
    });
    a
}

/// Port with nothing listening (bound then released).
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
