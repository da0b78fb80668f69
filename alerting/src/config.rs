//! `[alerting]` configuration: parsed with serde (`deny_unknown_fields`), then
//! validated as a whole so an operator sees every mistake at once.
//!
//! ```toml
//! [alerting]
//! outbox = "/var/lib/sensor/outbox.db"
//! dedup = { window = "60s", key = ["rule", "event.process.exe", "event.process.container_id"] }
//!
//! [[alerting.sinks]]
//! type = "webhook"
//! name = "soc"
//! url_env = "SOC_WEBHOOK_URL"
//! hmac_secret_env = "SOC_HMAC"
//! min_severity = "medium"
//! rules_exclude = ["noisy_*"]
//! rate_limit = { max = 100, window = "1m" }
//! retry = { max_attempts = 8, initial_backoff = "500ms", max_backoff = "5m" }
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::alert::Severity;

pub const DEFAULT_OUTBOX: &str = "/var/lib/sensor/outbox.db";

/// Durations are written as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"` or a bare
/// integer number of seconds.
pub mod duration_serde {
    use super::*;

    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid duration `{s}` (use e.g. 500ms, 30s, 5m, 1h)"))?;
        let ms = match unit.trim() {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => return Err(format!("invalid duration unit in `{s}` (ms, s, m, h, d)")),
        };
        ms.map(Duration::from_millis).ok_or_else(|| format!("duration `{s}` too large"))
    }

    pub fn format(d: &Duration) -> String {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") }
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(Duration::from_secs(n)),
            Raw::Str(s) => parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// SQLite outbox; every alert is committed here before delivery.
    pub outbox: PathBuf,
    /// Bound of the submit queue between `submit` and the outbox writer.
    pub submit_queue: usize,
    pub dedup: DedupConfig,
    /// Delivered rows older than this are pruned from the outbox.
    #[serde(with = "duration_serde")]
    pub retention: Duration,
    /// Pending deliveries older than this are dead-lettered without further
    /// attempts, so a sink that never comes back cannot grow the outbox forever.
    #[serde(with = "duration_serde")]
    pub max_pending_age: Duration,
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            outbox: PathBuf::from(DEFAULT_OUTBOX),
            submit_queue: 65_536,
            dedup: DedupConfig::default(),
            retention: Duration::from_secs(7 * 86_400),
            max_pending_age: Duration::from_secs(86_400),
            sinks: Vec::new(),
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// 0 disables aggregation.
    #[serde(with = "duration_serde")]
    pub window: Duration,
    /// Alert fields (`rule`, `host`, `title`, `severity`, `event.<path>`) that
    /// together with the rule identify "the same" alert.
    pub key: Vec<String>,
    /// Bound on distinct keys tracked; beyond it alerts pass un-aggregated
    /// (counted in `AlerterStats::dedup_untracked`).
    pub max_keys: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            window: Duration::from_secs(60),
            key: vec!["rule".into(), "event.process.exe".into(), "event.process.container_id".into()],
            max_keys: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    Webhook,
    Slack,
    Syslog,
    File,
    #[default]
    Stdout,
}

impl SinkType {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkType::Webhook => "webhook",
            SinkType::Slack => "slack",
            SinkType::Syslog => "syslog",
            SinkType::File => "file",
            SinkType::Stdout => "stdout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

/// Record format. `json` (syslog) and `alert` (file/stdout) are the sensor's
/// own alert schema; `cef` is syslog-only; `ocsf` is file/stdout-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    Json,
    Alert,
    Cef,
    Ocsf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Deliveries allowed per window; the rest are held back and summarised.
    pub max: u32,
    #[serde(with = "duration_serde")]
    pub window: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts before a delivery is dead-lettered (>= 1).
    pub max_attempts: u32,
    #[serde(with = "duration_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "duration_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// One `[[alerting.sinks]]` entry. A flat struct (not a serde-tagged enum)
/// because serde cannot combine `deny_unknown_fields` with flattened common
/// fields; `validate` rejects fields that do not belong to the sink's type.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    #[serde(rename = "type")]
    pub kind: SinkType,
    pub name: String,
    pub min_severity: Severity,
    /// Glob patterns over rule names; empty = all rules.
    pub rules_include: Vec<String>,
    pub rules_exclude: Vec<String>,
    pub rate_limit: Option<RateLimitConfig>,
    pub retry: RetryConfig,
    /// In-memory queue bound; overflow stays pending in the outbox.
    pub queue_capacity: Option<usize>,
    /// Deliveries in flight at once (webhook/slack only, default 4).
    pub concurrency: Option<usize>,
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,

    // webhook / slack
    pub url: Option<String>,
    pub url_env: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub hmac_secret_env: Option<String>,
    pub hmac_secret_file: Option<PathBuf>,

    // syslog
    pub address: Option<String>,
    pub transport: Option<SyslogTransport>,
    pub ca_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub facility: Option<u8>,
    pub app_name: Option<String>,

    // syslog / file / stdout
    pub format: Option<RecordFormat>,

    // file
    pub path: Option<PathBuf>,
    pub max_bytes: Option<u64>,
    pub max_files: Option<u32>,
}

mod opt_duration {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration_serde::serialize(d, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration_serde::deserialize(d).map(Some)
    }
}

/// Hand-written so URLs (which carry tokens) and header values never reach logs.
impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted_headers: BTreeMap<&str, &str> = self.headers.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("SinkConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("min_severity", &self.min_severity)
            .field("rules_include", &self.rules_include)
            .field("rules_exclude", &self.rules_exclude)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.retry)
            .field("queue_capacity", &self.queue_capacity)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("url_env", &self.url_env)
            .field("headers", &redacted_headers)
            .field("hmac_secret_env", &self.hmac_secret_env)
            .field("hmac_secret_file", &self.hmac_secret_file)
            .field("address", &self.address)
            .field("transport", &self.transport)
            .field("ca_file", &self.ca_file)
            .field("tls_server_name", &self.tls_server_name)
            .field("facility", &self.facility)
            .field("app_name", &self.app_name)
            .field("format", &self.format)
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("max_files", &self.max_files)
            .finish()
    }
}

/// Every problem found in a config, each naming its sink and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} alerting config error(s):", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl SinkConfig {
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity.unwrap_or(10_000)
    }
    pub fn concurrency(&self) -> usize {
        match self.kind {
            SinkType::Webhook | SinkType::Slack => self.concurrency.unwrap_or(4),
            _ => 1,
        }
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(10))
    }
    pub fn format(&self) -> RecordFormat {
        self.format.unwrap_or(match self.kind {
            SinkType::Syslog => RecordFormat::Json,
            _ => RecordFormat::Alert,
        })
    }
    pub fn transport(&self) -> SyslogTransport {
        self.transport.unwrap_or_default()
    }

    fn validate_into(&self, idx: usize, errs: &mut Vec<String>) {
        let label = if self.name.is_empty() {
            format!("sink #{} ({})", idx + 1, self.kind.as_str())
        } else {
            format!("sink `{}` ({})", self.name, self.kind.as_str())
        };
        let mut err = |msg: String| errs.push(format!("{label}: {msg}"));
        if self.name.is_empty() {
            err("`name` is required".into());
        } else if !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            err("`name` may only contain letters, digits, '-', '_' and '.'".into());
        }
        for (field, pats) in [("rules_include", &self.rules_include), ("rules_exclude", &self.rules_exclude)] {
            for p in pats {
                if let Err(e) = globset::Glob::new(p) {
                    err(format!("`{field}` pattern `{p}` is invalid: {}", e.kind()));
                }
            }
        }
        if let Some(rl) = &self.rate_limit {
            if rl.max == 0 {
                err("`rate_limit.max` must be >= 1".into());
            }
            if rl.window.is_zero() {
                err("`rate_limit.window` must be > 0".into());
            }
        }
        if self.retry.max_attempts == 0 {
            err("`retry.max_attempts` must be >= 1".into());
        }
        if self.retry.initial_backoff > self.retry.max_backoff {
            err("`retry.initial_backoff` exceeds `retry.max_backoff`".into());
        }
        if self.queue_capacity == Some(0) {
            err("`queue_capacity` must be >= 1".into());
        }
        if matches!(self.concurrency, Some(0) | Some(257..)) {
            err("`concurrency` must be between 1 and 256".into());
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            err("`timeout` must be > 0".into());
        }

        let is_http = matches!(self.kind, SinkType::Webhook | SinkType::Slack);
        let mut not_for = |field: &str, set: bool| {
            if set {
                errs.push(format!("{label}: field `{field}` is not valid for {} sinks", self.kind.as_str()));
            }
        };
        not_for("url", !is_http && self.url.is_some());
        not_for("url_env", !is_http && self.url_env.is_some());
        not_for("concurrency", !is_http && self.concurrency.is_some_and(|c| c != 1));
        not_for("timeout", !(is_http || self.kind == SinkType::Syslog) && self.timeout.is_some());
        let webhook = self.kind == SinkType::Webhook;
        not_for("headers", !webhook && !self.headers.is_empty());
        not_for("hmac_secret_env", !webhook && self.hmac_secret_env.is_some());
        not_for("hmac_secret_file", !webhook && self.hmac_secret_file.is_some());
        let syslog = self.kind == SinkType::Syslog;
        not_for("address", !syslog && self.address.is_some());
        not_for("transport", !syslog && self.transport.is_some());
        not_for("ca_file", !syslog && self.ca_file.is_some());
        not_for("tls_server_name", !syslog && self.tls_server_name.is_some());
        not_for("facility", !syslog && self.facility.is_some());
        not_for("app_name", !syslog && self.app_name.is_some());
        let file = self.kind == SinkType::File;
        not_for("path", !file && self.path.is_some());
        not_for("max_bytes", !file && self.max_bytes.is_some());
        not_for("max_files", !file && self.max_files.is_some());
        not_for("format", is_http && self.format.is_some());

        let mut err = |msg: String| errs.push(format!("{label}: {msg}"));
        match self.kind {
            SinkType::Webhook | SinkType::Slack => {
                match (&self.url, &self.url_env) {
                    (None, None) => err("one of `url` or `url_env` is required".into()),
                    (Some(_), Some(_)) => err("set only one of `url` and `url_env`".into()),
                    (Some(u), None) => {
                        if let Err(e) = check_url(u) {
                            err(format!("`url` {e}"));
                        }
                    }
                    (None, Some(_)) => {}
                }
                if self.hmac_secret_env.is_some() && self.hmac_secret_file.is_some() {
                    err("set only one of `hmac_secret_env` and `hmac_secret_file`".into());
                }
                for (k, v) in &self.headers {
                    if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                        err(format!("header name `{k}` is invalid"));
                    }
                    if reqwest::header::HeaderValue::from_str(v).is_err() {
                        // Value may be a secret: name the header only.
                        err(format!("value of header `{k}` is invalid"));
                    }
                }
            }
            SinkType::Syslog => {
                match &self.address {
                    None => err("`address` (host:port) is required".into()),
                    Some(a) => {
                        if split_host_port(a).is_none() {
                            err(format!("`address` `{a}` is not host:port"));
                        }
                    }
                }
                if !matches!(self.format(), RecordFormat::Json | RecordFormat::Cef) {
                    err("`format` must be `json` or `cef` for syslog".into());
                }
                if self.transport() != SyslogTransport::Tls && self.ca_file.is_some() {
                    err("`ca_file` needs `transport = \"tls\"`".into());
                }
                if self.facility.is_some_and(|f| f > 23) {
                    err("`facility` must be 0..=23".into());
                }
            }
            SinkType::File => {
                if self.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                    err("`path` is required".into());
                }
                if self.max_bytes == Some(0) {
                    err("`max_bytes` must be > 0".into());
                }
                if !matches!(self.format(), RecordFormat::Alert | RecordFormat::Ocsf) {
                    err("`format` must be `alert` or `ocsf` for file sinks".into());
                }
            }
            SinkType::Stdout => {
                if !matches!(self.format(), RecordFormat::Alert | RecordFormat::Ocsf) {
                    err("`format` must be `alert` or `ocsf` for stdout".into());
                }
            }
        }
    }
}

/// Checks a URL without echoing it (it may carry a token).
pub(crate) fn check_url(u: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(u).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be http:// or https://".into());
    }
    if parsed.host_str().is_none() {
        return Err("has no host".into());
    }
    Ok(())
}

pub(crate) fn split_host_port(a: &str) -> Option<(String, u16)> {
    let (h, p) = a.rsplit_once(':')?;
    let port: u16 = p.parse().ok()?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    if h.is_empty() {
        return None;
    }
    Some((h.to_string(), port))
}

impl AlertingConfig {
    /// Checks everything that can be checked without touching the environment;
    /// returns all problems, each naming its sink.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errs = Vec::new();
        if self.outbox.as_os_str().is_empty() {
            errs.push("alerting: `outbox` path is empty".into());
        }
        if self.submit_queue == 0 {
            errs.push("alerting: `submit_queue` must be >= 1".into());
        }
        if self.dedup.max_keys == 0 && !self.dedup.window.is_zero() {
            errs.push("alerting.dedup: `max_keys` must be >= 1".into());
        }
        for k in &self.dedup.key {
            let ok = matches!(k.as_str(), "rule" | "host" | "title" | "severity" | "message")
                || k.strip_prefix("event.").is_some_and(|r| !r.is_empty() && r.split('.').all(|p| !p.is_empty()));
            if !ok {
                errs.push(format!(
                    "alerting.dedup: key field `{k}` must be rule, host, title, severity, message or event.<path>"
                ));
            }
        }
        let mut seen = HashSet::new();
        for (i, s) in self.sinks.iter().enumerate() {
            if !s.name.is_empty() && !seen.insert(s.name.as_str()) {
                errs.push(format!("sink `{}`: duplicate sink name", s.name));
            }
            s.validate_into(i, &mut errs);
        }
        if errs.is_empty() { Ok(()) } else { Err(ConfigErrors(errs)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration_serde::parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration_serde::parse("5m").unwrap(), Duration::from_secs(300));
        assert!(duration_serde::parse("5 parsecs").is_err());
        assert!(duration_serde::parse("").is_err());
    }

    #[test]
    fn debug_redacts_url_and_headers() {
        let s = SinkConfig {
            kind: SinkType::Slack,
            name: "s".into(),
            url: Some("https://hooks.slack.com/services/T000/B000/SECRETTOKEN".into()),
            headers: [("Authorization".to_string(), "Bearer hunter2".to_string())].into(),
            ..Default::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("SECRETTOKEN") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("Authorization"));
    }
}
