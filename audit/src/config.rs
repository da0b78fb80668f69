//! `[audit]` section of the sensor configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AuditError;
use crate::time::{format_duration, parse_bytes, parse_duration};

/// Default location of the audit database.
pub const DEFAULT_DB_PATH: &str = "/var/lib/sensor/audit.db";

/// A duration written as a human string in TOML ("100ms", "7d"; "0" disables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HumanDuration(pub Duration);

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

/// A size in bytes, written either as an integer or as "512MiB" / "1GiB" ("0" disables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSize(pub u64);

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => {
                parse_bytes(&s).map(ByteSize).map_err(|e| serde::de::Error::custom(format!("invalid size {s:?}: {e}")))
            }
        }
    }
}

/// Which read-only opens the trail keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadOpens {
    All,
    #[default]
    Sensitive,
    None,
}

/// Audit store configuration, embedded in the sensor TOML under `[audit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record events and alerts at all.
    pub enabled: bool,
    /// Database file; `--audit-db` overrides it.
    pub path: PathBuf,
    /// Event types to record; empty means every type. Alerts are always recorded.
    pub include_types: Vec<String>,
    /// Event types never recorded (applied after `include_types`).
    pub exclude_types: Vec<String>,
    /// Events whose `file.path` starts with one of these are not recorded (noise such as /dev/null).
    pub skip_path_prefixes: Vec<String>,
    /// Read-only opens are the bulk of a host's events and rarely matter
    /// later: `all` records every one, `sensitive` (the default) only those
    /// under `sensitive_prefixes`, `none` none. Writes, creates and
    /// truncations are always recorded.
    pub read_opens: ReadOpens,
    /// Where a read-only open is worth recording (with `read_opens = "sensitive"`).
    pub sensitive_prefixes: Vec<String>,
    /// Delete records older than this ("0" keeps them forever).
    pub max_age: HumanDuration,
    /// Keep the live data below this many bytes by deleting the oldest records (0 = no limit).
    pub max_bytes: ByteSize,
    /// Commit after this many rows...
    pub batch_rows: usize,
    /// ...or this long after the first uncommitted row arrived, whichever comes first.
    pub batch_interval: HumanDuration,
    /// Capacity of the channel between `record_*` callers and the writer thread.
    pub channel_capacity: usize,
    /// Rows kept in memory while the database cannot be written (disk full); the rest is counted and dropped.
    pub degraded_buffer_rows: usize,
    /// How often a degraded writer retries the database.
    pub degraded_retry: HumanDuration,
    /// How often retention (age and size) is checked.
    pub retention_interval: HumanDuration,
    /// Write a chain checkpoint every this many records (also on prune and shutdown).
    pub checkpoint_every: u64,
    /// HMAC key (16..=1024 raw bytes, mode 0600; `sensor audit keygen PATH` makes one).
    /// When set, record and checkpoint hashes are HMAC-SHA256 under this key, so
    /// only its holder can recompute a rewritten chain. Fixed when a trail is
    /// created: a keyed trail cannot be reopened without its key, nor an
    /// unkeyed, non-empty one with a key.
    pub key_file: Option<PathBuf>,
    /// Records per index segment (tuning; only used when a database is created).
    pub index_segment_rows: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            path: PathBuf::from(DEFAULT_DB_PATH),
            include_types: Vec::new(),
            exclude_types: Vec::new(),
            // Pure noise for an audit trail: every shell touches these.
            skip_path_prefixes: [
                "/dev/null",
                "/dev/zero",
                "/dev/urandom",
                "/dev/random",
                "/dev/tty",
                "/dev/pts/",
                "/proc/self/",
                "/proc/thread-self/",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            read_opens: ReadOpens::Sensitive,
            sensitive_prefixes: [
                "/etc/",
                "/root/",
                "/home/",
                "/boot/",
                "/proc/",
                "/run/secrets/",
                "/var/run/secrets/",
                "/var/spool/cron/",
                "/var/lib/sensor/",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            max_age: HumanDuration(Duration::from_secs(30 * 86_400)),
            max_bytes: ByteSize(2 << 30),
            batch_rows: 16_384,
            batch_interval: HumanDuration(Duration::from_millis(100)),
            channel_capacity: 65_536,
            degraded_buffer_rows: 100_000,
            degraded_retry: HumanDuration(Duration::from_secs(1)),
            retention_interval: HumanDuration(Duration::from_secs(10)),
            checkpoint_every: 100_000,
            key_file: None,
            index_segment_rows: crate::index::DEFAULT_SEG_ROWS,
        }
    }
}

impl AuditConfig {
    /// Check every setting and report all problems at once.
    pub fn validate(&self) -> Result<(), AuditError> {
        let mut errs = Vec::new();
        if self.path.as_os_str().is_empty() {
            errs.push("path must not be empty".to_string());
        }
        if self.batch_rows == 0 || self.batch_rows > 1_000_000 {
            errs.push(format!("batch_rows must be 1..=1000000 (got {})", self.batch_rows));
        }
        if self.channel_capacity == 0 || self.channel_capacity > 16_777_216 {
            errs.push(format!("channel_capacity must be 1..=16777216 (got {})", self.channel_capacity));
        }
        if self.degraded_buffer_rows > 16_777_216 {
            errs.push(format!("degraded_buffer_rows must be <= 16777216 (got {})", self.degraded_buffer_rows));
        }
        if self.batch_interval.0.is_zero() {
            errs.push("batch_interval must be > 0".into());
        }
        if self.degraded_retry.0.is_zero() {
            errs.push("degraded_retry must be > 0".into());
        }
        if self.retention_interval.0.is_zero() {
            errs.push("retention_interval must be > 0".into());
        }
        if self.checkpoint_every == 0 {
            errs.push("checkpoint_every must be > 0".into());
        }
        if !(16..=1 << 22).contains(&self.index_segment_rows) {
            errs.push(format!("index_segment_rows must be 16..=4194304 (got {})", self.index_segment_rows));
        }
        if self.key_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            errs.push("key_file must not be empty (remove it for an unkeyed chain)".into());
        }
        if self.max_bytes.0 != 0 && self.max_bytes.0 < 1 << 20 {
            errs.push(format!("max_bytes must be 0 (no limit) or at least 1MiB (got {})", self.max_bytes.0));
        }
        for t in self.include_types.iter().chain(&self.exclude_types) {
            if !valid_type_name(t) {
                errs.push(format!("invalid event type {t:?} (lowercase letters, digits, _)"));
            }
        }
        for t in &self.include_types {
            if self.exclude_types.contains(t) {
                errs.push(format!("event type {t:?} is both included and excluded"));
            }
        }
        if self.skip_path_prefixes.iter().any(|p| p.is_empty()) {
            errs.push("skip_path_prefixes must not contain an empty prefix (it would skip every file)".into());
        }
        if errs.is_empty() { Ok(()) } else { Err(AuditError::Config(errs.join("; "))) }
    }
}

pub(crate) fn valid_type_name(t: &str) -> bool {
    !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_roundtrip_and_defaults() {
        let cfg: AuditConfig = toml::from_str(
            r#"
            path = "/tmp/a.db"
            max_age = "7d"
            max_bytes = "512MiB"
            exclude_types = ["close"]
            batch_interval = "50ms"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.max_age.0, Duration::from_secs(7 * 86400));
        assert_eq!(cfg.max_bytes.0, 512 << 20);
        assert_eq!(cfg.batch_rows, AuditConfig::default().batch_rows);
        cfg.validate().unwrap();
        let back: AuditConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        AuditConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_config_is_rejected_clearly() {
        let e = toml::from_str::<AuditConfig>("max_age = \"7 days\"").unwrap_err();
        assert!(e.to_string().contains("invalid duration"), "{e}");
        let e = toml::from_str::<AuditConfig>("bogus = 1").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let cfg = AuditConfig {
            batch_rows: 0,
            include_types: vec!["exec".into()],
            exclude_types: vec!["exec".into(), "Bad Type".into()],
            ..Default::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("batch_rows") && e.contains("both included") && e.contains("Bad Type"), "{e}");
    }
}
