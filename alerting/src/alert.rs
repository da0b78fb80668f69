//! The alert model: what the policy engine hands to `Alerter::submit`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Alert severity; ordered so routing can compare against a sink's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Stable small integer used in the outbox.
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    pub fn from_i64(v: i64) -> Severity {
        match v {
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            4 => Severity::Critical,
            _ => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("unknown severity `{other}`")),
        }
    }
}

fn one() -> u64 {
    1
}

/// One alert. `id` is the idempotency key: assigned on submit when empty and
/// never changed afterwards, so receivers can deduplicate redeliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    #[serde(default)]
    pub id: String,
    pub rule: String,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub message: String,
    pub ts: DateTime<Utc>,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub mitre: Vec<String>,
    /// Triggering event: process at `event.process.{exe,pid,comm,args,container_id}`,
    /// file at `event.file.path`, network at `event.net.{daddr,dport}`.
    #[serde(default)]
    pub event: Value,
    /// Occurrences this notification stands for (1 unless aggregated).
    #[serde(default = "one")]
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

impl Alert {
    /// A minimal alert stamped now; fill the rest with the builder-style setters
    /// or by struct update.
    pub fn new(rule: impl Into<String>, severity: Severity) -> Alert {
        Alert {
            id: String::new(),
            rule: rule.into(),
            severity,
            title: String::new(),
            message: String::new(),
            ts: Utc::now(),
            host: String::new(),
            mitre: Vec::new(),
            event: Value::Null,
            count: 1,
            first_seen: None,
            last_seen: None,
        }
    }

    /// Looks up a dotted path: top-level fields by name (`rule`, `host`, ...)
    /// or `event.a.b` inside the triggering event. Missing -> None.
    pub fn field(&self, path: &str) -> Option<String> {
        match path {
            "rule" => return Some(self.rule.clone()),
            "host" => return Some(self.host.clone()),
            "title" => return Some(self.title.clone()),
            "severity" => return Some(self.severity.to_string()),
            "message" => return Some(self.message.clone()),
            _ => {}
        }
        let rest = path.strip_prefix("event.")?;
        let v = self.event_path(rest)?;
        Some(match v {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        })
    }

    /// Value inside `event` at a dotted path (`process.exe`).
    pub fn event_path(&self, dotted: &str) -> Option<&Value> {
        let mut cur = &self.event;
        for part in dotted.split('.') {
            cur = match cur {
                Value::Object(m) => m.get(part)?,
                Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// String-ish event value (numbers rendered), for sinks.
    pub fn event_str(&self, dotted: &str) -> Option<String> {
        match self.event_path(dotted)? {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(a) => Some(
                a.iter()
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        o => o.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            o => Some(o.to_string()),
        }
    }
}

/// Fresh idempotency key in UUIDv7 text form (48-bit ms timestamp + 74
/// random bits). Time-ordered keys append at the edge of the outbox's unique
/// index instead of dirtying a random page per insert, which cut the outbox
/// write volume several-fold under bursts.
pub fn new_alert_id() -> String {
    let mut b: [u8; 16] = rand::random();
    let ms = (chrono::Utc::now().timestamp_millis().max(0) as u64).to_be_bytes();
    b[..6].copy_from_slice(&ms[2..8]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_serializes_lowercase() {
        assert!(Severity::Info < Severity::Low && Severity::High < Severity::Critical);
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
        let s: Severity = serde_json::from_str("\"critical\"").unwrap();
        assert_eq!(s, Severity::Critical);
        assert!(serde_json::from_str::<Severity>("\"bogus\"").is_err());
    }

    #[test]
    fn field_paths() {
        let mut a = Alert::new("r1", Severity::Low);
        a.event = serde_json::json!({"process": {"exe": "/bin/sh", "pid": 42, "args": ["a", "b"]}});
        assert_eq!(a.field("rule").as_deref(), Some("r1"));
        assert_eq!(a.field("event.process.exe").as_deref(), Some("/bin/sh"));
        assert_eq!(a.field("event.process.pid").as_deref(), Some("42"));
        assert_eq!(a.field("event.process.missing"), None);
        assert_eq!(a.event_str("process.args").as_deref(), Some("a b"));
    }

    #[test]
    fn ids_are_uuid_like_and_unique() {
        let a = new_alert_id();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_alert_id());
    }

    #[test]
    fn count_defaults_to_one() {
        let a: Alert = serde_json::from_str(r#"{"rule":"x","ts":"2024-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(a.count, 1);
        assert_eq!(a.severity, Severity::Info);
    }
}
