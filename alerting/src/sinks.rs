//! Sink implementations. Each is built once from a validated `SinkConfig`
//! (secrets resolved then) and delivers one alert per call; retry, backoff and
//! rate limiting live in the pipeline, not here.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls;

use crate::alert::Alert;
use crate::config::{RecordFormat, SinkConfig, SinkType, SyslogTransport, split_host_port};
use crate::format;

/// Header carrying the idempotency key (the alert id).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Header carrying `sha256=<hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Sensor-Signature";

/// A secret string whose Debug/Display never shows the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why one delivery attempt failed. `msg` never contains URLs or secrets.
#[derive(Debug, Clone)]
pub struct DeliveryError {
    pub msg: String,
    /// Retrying cannot help (e.g. HTTP 400): dead-letter at once.
    pub permanent: bool,
    /// Server asked us to wait (HTTP 429/503 Retry-After).
    pub retry_after: Option<Duration>,
}

impl DeliveryError {
    fn retry(msg: impl Into<String>) -> Self {
        DeliveryError { msg: msg.into(), permanent: false, retry_after: None }
    }
}

/// Errors from reqwest carry the URL (and with it any token): strip it and
/// flatten the cause chain into one line.
fn redact_reqwest(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut s = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    if timeout && !s.contains("timed out") {
        s.push_str(" (timed out)");
    }
    s
}

fn secret_from(
    cfg: &SinkConfig,
    value: Option<&String>,
    env: Option<&String>,
    what: &str,
) -> Result<Option<Secret>, String> {
    if let Some(v) = value {
        return Ok(Some(Secret(v.clone())));
    }
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
            _ => Err(format!("sink `{}`: environment variable `{var}` for {what} is not set", cfg.name)),
        };
    }
    Ok(None)
}

pub(crate) enum Sink {
    Webhook(WebhookSink),
    Slack(SlackSink),
    Syslog(SyslogSink),
    File(FileSink),
    Stdout(StdoutSink),
}

impl Sink {
    /// Resolves secrets and builds clients. Errors name the sink, never a value.
    pub(crate) fn build(cfg: &SinkConfig) -> Result<Sink, String> {
        Ok(match cfg.kind {
            SinkType::Webhook => Sink::Webhook(WebhookSink::build(cfg)?),
            SinkType::Slack => Sink::Slack(SlackSink::build(cfg)?),
            SinkType::Syslog => Sink::Syslog(SyslogSink::build(cfg)?),
            SinkType::File => Sink::File(FileSink::build(cfg)?),
            SinkType::Stdout => Sink::Stdout(StdoutSink { format: cfg.format() }),
        })
    }

    pub(crate) async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        match self {
            Sink::Webhook(s) => s.deliver(alert).await,
            Sink::Slack(s) => s.deliver(alert).await,
            Sink::Syslog(s) => s.deliver(alert).await,
            Sink::File(s) => s.deliver(alert),
            Sink::Stdout(s) => s.deliver(alert),
        }
    }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("sensor-alerting/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("building HTTP client: {}", redact_reqwest(e)))
}

/// Maps an HTTP response status to success or a classified error.
fn classify(status: reqwest::StatusCode, headers: &HeaderMap) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let retry_after =
        headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    let permanent = status.is_client_error() && !matches!(status.as_u16(), 408 | 409 | 425 | 429);
    Err(DeliveryError { msg: format!("HTTP {status}"), permanent, retry_after })
}

/// Retry-After is either delta-seconds or an HTTP-date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(delta.clamp(0, 86_400_000) as u64))
}

pub(crate) struct WebhookSink {
    client: reqwest::Client,
    url: Secret,
    headers: HeaderMap,
    hmac: Option<Secret>,
}

impl WebhookSink {
    fn build(cfg: &SinkConfig) -> Result<Self, String> {
        let url = secret_from(cfg, cfg.url.as_ref(), cfg.url_env.as_ref(), "the URL")?
            .ok_or_else(|| format!("sink `{}`: no URL", cfg.name))?;
        crate::config::check_url(url.expose()).map_err(|e| format!("sink `{}`: URL {e}", cfg.name))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("sink `{}`: bad header name `{k}`", cfg.name))?;
            let mut val =
                HeaderValue::from_str(v).map_err(|_| format!("sink `{}`: bad value for header `{k}`", cfg.name))?;
            val.set_sensitive(true);
            headers.insert(name, val);
        }
        let hmac = match (&cfg.hmac_secret_env, &cfg.hmac_secret_file) {
            (Some(_), _) => secret_from(cfg, None, cfg.hmac_secret_env.as_ref(), "the HMAC key")?,
            (None, Some(path)) => {
                let raw = std::fs::read_to_string(path).map_err(|e| {
                    format!("sink `{}`: reading hmac_secret_file {}: {}", cfg.name, path.display(), e.kind())
                })?;
                let key = raw.trim_end_matches(['\n', '\r']).to_string();
                if key.is_empty() {
                    return Err(format!("sink `{}`: hmac_secret_file is empty", cfg.name));
                }
                Some(Secret(key))
            }
            (None, None) => None,
        };
        Ok(WebhookSink { client: http_client(cfg.timeout())?, url, headers, hmac })
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let body = serde_json::to_vec(alert).map_err(|e| DeliveryError {
            msg: format!("encoding alert: {e}"),
            permanent: true,
            retry_after: None,
        })?;
        let mut req = self
            .client
            .post(self.url.expose())
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, alert.id.as_str());
        if let Some(key) = &self.hmac {
            req = req.header(SIGNATURE_HEADER, sign(key.expose().as_bytes(), &body));
        }
        let resp = req.body(body).send().await.map_err(|e| DeliveryError::retry(redact_reqwest(e)))?;
        let res = classify(resp.status(), resp.headers());
        // Drain the body so the keep-alive connection can be reused.
        let _ = resp.bytes().await;
        res
    }
}

/// `sha256=<hex>` signature over the exact body bytes.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) struct SlackSink {
    client: reqwest::Client,
    url: Secret,
}

impl SlackSink {
    fn build(cfg: &SinkConfig) -> Result<Self, String> {
        let url = secret_from(cfg, cfg.url.as_ref(), cfg.url_env.as_ref(), "the URL")?
            .ok_or_else(|| format!("sink `{}`: no URL", cfg.name))?;
        crate::config::check_url(url.expose()).map_err(|e| format!("sink `{}`: URL {e}", cfg.name))?;
        Ok(SlackSink { client: http_client(cfg.timeout())?, url })
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let resp = self
            .client
            .post(self.url.expose())
            .header(IDEMPOTENCY_HEADER, alert.id.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(format::slack_payload(alert).to_string())
            .send()
            .await
            .map_err(|e| DeliveryError::retry(redact_reqwest(e)))?;
        let res = classify(resp.status(), resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        res.map_err(|mut e| {
            // Slack explains 4xx in a short plain-text body (e.g. invalid_blocks).
            let hint: String =
                String::from_utf8_lossy(&body).chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(80).collect();
            if !hint.is_empty() {
                e.msg = format!("{}: {hint}", e.msg);
            }
            e
        })
    }
}

enum SyslogConn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

pub(crate) struct SyslogSink {
    host: String,
    port: u16,
    transport: SyslogTransport,
    format: RecordFormat,
    facility: u8,
    app_name: String,
    timeout: Duration,
    tls: Option<(tokio_rustls::TlsConnector, rustls_pki_types::ServerName<'static>)>,
    conn: tokio::sync::Mutex<Option<SyslogConn>>,
    udp: tokio::sync::Mutex<Option<UdpSocket>>,
}

/// UDP datagrams larger than this are shrunk (event dropped, message cut).
const UDP_MAX: usize = 8192;

impl SyslogSink {
    fn build(cfg: &SinkConfig) -> Result<Self, String> {
        let addr = cfg.address.clone().unwrap_or_default();
        let (host, port) =
            split_host_port(&addr).ok_or_else(|| format!("sink `{}`: address is not host:port", cfg.name))?;
        let tls = if cfg.transport() == SyslogTransport::Tls {
            let mut roots = rustls::RootCertStore::empty();
            match &cfg.ca_file {
                Some(path) => {
                    use rustls_pki_types::pem::PemObject;
                    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                        .map_err(|e| format!("sink `{}`: reading ca_file: {e}", cfg.name))?;
                    for c in certs {
                        let c = c.map_err(|e| format!("sink `{}`: ca_file: {e}", cfg.name))?;
                        roots.add(c).map_err(|e| format!("sink `{}`: ca_file: {e}", cfg.name))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            // Explicit ring provider: aws-lc-rs is deliberately not built.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls_cfg = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("sink `{}`: TLS setup: {e}", cfg.name))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = cfg.tls_server_name.clone().unwrap_or_else(|| host.clone());
            let server_name = rustls_pki_types::ServerName::try_from(name)
                .map_err(|_| format!("sink `{}`: invalid TLS server name", cfg.name))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(tls_cfg)), server_name))
        } else {
            None
        };
        Ok(SyslogSink {
            host,
            port,
            transport: cfg.transport(),
            format: cfg.format(),
            facility: cfg.facility.unwrap_or(10),
            app_name: cfg.app_name.clone().unwrap_or_else(|| "sensor".into()),
            timeout: cfg.timeout(),
            tls,
            conn: tokio::sync::Mutex::new(None),
            udp: tokio::sync::Mutex::new(None),
        })
    }

    fn message(&self, alert: &Alert) -> String {
        let body = match self.format {
            RecordFormat::Cef => format::cef(alert),
            _ => serde_json::to_string(alert).unwrap_or_default(),
        };
        format::rfc5424(self.facility, &self.app_name, std::process::id(), alert, &body)
    }

    async fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let timeout = self.timeout;
        let fut = async {
            match self.transport {
                SyslogTransport::Udp => self.send_udp(alert).await,
                _ => self.send_stream(alert).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => {
                *self.conn.lock().await = None;
                Err(DeliveryError::retry("syslog send timed out"))
            }
        }
    }

    async fn send_udp(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let mut msg = self.message(alert);
        if msg.len() > UDP_MAX {
            let mut small = alert.clone();
            small.event = serde_json::json!({"truncated": true});
            small.message = small.message.chars().take(1024).collect();
            msg = self.message(&small);
            if msg.len() > UDP_MAX {
                let mut cut = UDP_MAX;
                while !msg.is_char_boundary(cut) {
                    cut -= 1;
                }
                msg.truncate(cut);
            }
        }
        let mut guard = self.udp.lock().await;
        if guard.is_none() {
            let target = tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| DeliveryError::retry(format!("resolving syslog host: {e}")))?
                .next()
                .ok_or_else(|| DeliveryError::retry("syslog host has no address"))?;
            let bind = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let s = UdpSocket::bind(bind).await.map_err(|e| DeliveryError::retry(format!("udp bind: {e}")))?;
            s.connect(target).await.map_err(|e| DeliveryError::retry(format!("udp connect: {e}")))?;
            *guard = Some(s);
        }
        let sock = guard.as_ref().expect("set above");
        if let Err(e) = sock.send(msg.as_bytes()).await {
            *guard = None;
            return Err(DeliveryError::retry(format!("udp send: {e}")));
        }
        Ok(())
    }

    async fn send_stream(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let msg = self.message(alert);
        // RFC 6587 octet counting: "<len> <msg>".
        let frame = format!("{} {}", msg.len(), msg);
        let mut guard = self.conn.lock().await;
        if let Some(SyslogConn::Tcp(s)) = guard.as_ref() {
            // A peer that closed shows up as a readable EOF; reconnect instead
            // of writing into a dead socket and losing the frame.
            let mut b = [0u8; 1];
            if let Ok(0) = s.try_read(&mut b) {
                *guard = None;
            }
        }
        if guard.is_none() {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| DeliveryError::retry(format!("syslog connect: {e}")))?;
            let _ = tcp.set_nodelay(true);
            *guard = Some(match &self.tls {
                Some((conn, name)) => {
                    let tls = conn
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| DeliveryError::retry(format!("syslog TLS handshake: {e}")))?;
                    SyslogConn::Tls(Box::new(tls))
                }
                None => SyslogConn::Tcp(tcp),
            });
        }
        let res = match guard.as_mut().expect("set above") {
            SyslogConn::Tcp(s) => s.write_all(frame.as_bytes()).await,
            SyslogConn::Tls(s) => match s.write_all(frame.as_bytes()).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
        };
        if let Err(e) = res {
            *guard = None;
            return Err(DeliveryError::retry(format!("syslog write: {e}")));
        }
        Ok(())
    }
}

pub(crate) struct FileSink {
    path: PathBuf,
    format: RecordFormat,
    max_bytes: u64,
    max_files: u32,
    state: std::sync::Mutex<Option<(std::fs::File, u64)>>,
}

impl FileSink {
    fn build(cfg: &SinkConfig) -> Result<Self, String> {
        let path = cfg.path.clone().unwrap_or_default();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("sink `{}`: creating {}: {}", cfg.name, dir.display(), e.kind()))?;
        }
        Ok(FileSink {
            path,
            format: cfg.format(),
            max_bytes: cfg.max_bytes.unwrap_or(100 * 1024 * 1024),
            max_files: cfg.max_files.unwrap_or(5),
            state: std::sync::Mutex::new(None),
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.max_files == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(self.rotated(self.max_files));
        for n in (1..self.max_files).rev() {
            let _ = std::fs::rename(self.rotated(n), self.rotated(n + 1));
        }
        std::fs::rename(&self.path, self.rotated(1))
    }

    // Plain blocking writes: one short append to the page cache per alert is
    // cheaper than a hop to the blocking pool.
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let mut line = match self.format {
            RecordFormat::Ocsf => serde_json::to_string(&format::ocsf(alert)),
            _ => serde_json::to_string(alert),
        }
        .unwrap_or_default();
        line.push('\n');
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let io = |e: std::io::Error| DeliveryError::retry(format!("file sink: {}", e.kind()));
        if let Some((_, size)) = st.as_ref()
            && *size > 0
            && size + line.len() as u64 > self.max_bytes
        {
            *st = None;
            self.rotate().map_err(io)?;
        }
        if st.is_none() {
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            *st = Some((f, size));
            if size > 0 && size + line.len() as u64 > self.max_bytes {
                *st = None;
                self.rotate().map_err(io)?;
                let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io)?;
                *st = Some((f, 0));
            }
        }
        let (f, size) = st.as_mut().expect("opened above");
        if let Err(e) = f.write_all(line.as_bytes()) {
            *st = None;
            return Err(io(e));
        }
        *size += line.len() as u64;
        Ok(())
    }
}

pub(crate) struct StdoutSink {
    format: RecordFormat,
}

impl StdoutSink {
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError> {
        let line = match self.format {
            RecordFormat::Ocsf => serde_json::to_string(&format::ocsf(alert)),
            _ => serde_json::to_string(alert),
        }
        .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map_err(|e| DeliveryError::retry(format!("stdout: {}", e.kind())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT").is_some());
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret("tok".into())), "Secret(<redacted>)");
    }
}
