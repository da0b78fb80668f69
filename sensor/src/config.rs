//! The sensor's TOML configuration. Every key is optional; unknown keys are
//! rejected by name; `validate` reports every problem at once. Command-line
//! flags override the file (see `cli::RunArgs::apply`).

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Read-only opens under these prefixes are dropped in the kernel: they are
/// where loaders, locales and procps generate storms of uninteresting opens.
/// Writes, creates and truncations there are still reported, and so are
/// /proc/PID/{mem,environ}-style reads of other processes unless ignored.
pub const DEFAULT_IGNORE_PREFIXES: &[&str] = &[
    "/proc/self/",
    "/proc/thread-self/",
    "/sys/",
    "/usr/lib/",
    "/usr/lib64/",
    "/lib/",
    "/lib64/",
    "/usr/share/locale/",
    "/usr/share/zoneinfo/",
    "/etc/ld.so.cache",
    "/dev/null",
    "/dev/urandom",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Host name reported in every event (default: the kernel's hostname).
    pub host: Option<String>,
    /// Where to write events as JSON lines: a path, or "-" for stdout.
    pub events_out: Option<String>,
    pub kernel: KernelConfig,
    pub process_table: ProcTableConfig,
    pub pipeline: PipelineConfig,
    /// Rego rules: the embedded defaults, extra directories, overrides.
    pub policy: policy::PolicyConfig,
    /// The tamper-evident SQLite audit trail.
    pub audit: audit::AuditConfig,
    /// Alert sinks (webhook, Slack, syslog, file, stdout) behind a durable outbox.
    pub alerting: alerting::AlertingConfig,
    pub metrics: MetricsConfig,
    /// The local admin socket (`sensor topology`); default /run/sensor/admin.sock.
    pub admin_socket: Option<PathBuf>,
    /// The service topology built from connection events.
    pub topology: topology::TopologyConfig,
    /// L7 request tracking (HTTP, Redis, PostgreSQL).
    pub l7: crate::l7::L7Config,
    /// Anomaly detection: per-service baselines (needs `topology`).
    pub anomaly: anomaly::AnomalyConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Prometheus endpoint, `HOST:PORT` or `:PORT` (loopback); off when unset.
    pub addr: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Event types to report; the others are switched off in the kernel.
    pub events: Vec<String>,
    /// Ring buffer size per hook family, KiB (a power of two, >= 4).
    pub ring_buffer_kib: RingBufferSizes,
    /// How often the reader drains the ring buffers when not woken, ms.
    pub poll_interval_ms: u64,
    /// The kernel wakes the reader once this much data waits, KiB.
    pub wakeup_kib: u64,
    pub file_filter: FileFilterConfig,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            events: sensor_bpf::wire::TYPE_NAMES.iter().filter(|n| !n.is_empty()).map(|s| s.to_string()).collect(),
            ring_buffer_kib: RingBufferSizes::default(),
            poll_interval_ms: 2,
            wakeup_kib: 1024,
            file_filter: FileFilterConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingBufferSizes {
    pub process: u64,
    pub file: u64,
    pub net: u64,
}

impl Default for RingBufferSizes {
    fn default() -> Self {
        RingBufferSizes { process: 8 * 1024, file: 16 * 1024, net: 8 * 1024 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileFilterConfig {
    /// Read-only opens under these prefixes are not reported.
    pub ignore_prefixes: Vec<String>,
    /// Paths under these prefixes are always reported (longest prefix wins).
    pub watch_prefixes: Vec<String>,
    /// Report only file events under a watch prefix.
    pub watch_only: bool,
}

impl Default for FileFilterConfig {
    fn default() -> Self {
        FileFilterConfig {
            ignore_prefixes: DEFAULT_IGNORE_PREFIXES.iter().map(|s| s.to_string()).collect(),
            watch_prefixes: Vec::new(),
            watch_only: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcTableConfig {
    /// Processes remembered (LRU).
    pub capacity: usize,
}

impl Default for ProcTableConfig {
    fn default() -> Self {
        ProcTableConfig { capacity: 65536 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Events buffered between the kernel reader and the pipeline; beyond
    /// this the reader drops (and counts) rather than stall the kernel.
    pub queue_capacity: usize,
    /// Log counters (events, drops) this often, seconds; 0 = only at exit.
    pub stats_interval_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { queue_capacity: 65536, stats_interval_secs: 60 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.into(), message })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Checks every value, collecting all problems.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs = Vec::new();
        for name in &self.kernel.events {
            if sensor_bpf::wire::type_from_name(name).is_none() {
                errs.push(format!(
                    "kernel.events: unknown event type {name:?} (known: {})",
                    sensor_bpf::wire::TYPE_NAMES
                        .iter()
                        .filter(|n| !n.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        let rb = &self.kernel.ring_buffer_kib;
        for (name, v) in [("process", rb.process), ("file", rb.file), ("net", rb.net)] {
            if v < 4 || !v.is_power_of_two() || v > 1024 * 1024 {
                errs.push(format!("kernel.ring_buffer_kib.{name}: {v} must be a power of two between 4 and 1048576"));
            }
        }
        if self.kernel.poll_interval_ms == 0 || self.kernel.poll_interval_ms > 1000 {
            errs.push(format!("kernel.poll_interval_ms: {} must be between 1 and 1000", self.kernel.poll_interval_ms));
        }
        let ff = &self.kernel.file_filter;
        for (key, list) in [("ignore_prefixes", &ff.ignore_prefixes), ("watch_prefixes", &ff.watch_prefixes)] {
            for p in list {
                if !p.starts_with('/') {
                    errs.push(format!("kernel.file_filter.{key}: {p:?} must be an absolute path"));
                }
                if p.len() > sensor_bpf::wire::PATH_FILTER_KEY_MAX {
                    errs.push(format!(
                        "kernel.file_filter.{key}: {p:?} is longer than {} bytes",
                        sensor_bpf::wire::PATH_FILTER_KEY_MAX
                    ));
                }
            }
        }
        if ff.ignore_prefixes.len() + ff.watch_prefixes.len() > 256 {
            errs.push("kernel.file_filter: at most 256 prefixes in all".into());
        }
        if ff.watch_only && ff.watch_prefixes.is_empty() {
            errs.push("kernel.file_filter.watch_only needs at least one watch_prefixes entry".into());
        }
        if self.process_table.capacity < 16 {
            errs.push("process_table.capacity must be at least 16".into());
        }
        if let Some(addr) = &self.metrics.addr
            && let Err(e) = crate::metrics::parse_addr(addr)
        {
            errs.push(format!("metrics.addr: {e}"));
        }
        if let Err(e) = self.l7.validate() {
            errs.push(format!("l7: {e}"));
        }
        if let Err(e) = self.topology.validate() {
            errs.push(format!("topology: {e}"));
        }
        if self.anomaly.enabled
            && let Err(e) = self.anomaly.validate()
        {
            errs.push(format!("anomaly: {e}"));
        }
        if self.pipeline.queue_capacity == 0 {
            errs.push("pipeline.queue_capacity must be at least 1".into());
        }
        if self.audit.enabled
            && let Err(e) = self.audit.validate()
        {
            errs.push(format!("audit: {e}"));
        }
        if !self.alerting.sinks.is_empty()
            && let Err(e) = self.alerting.validate()
        {
            errs.push(format!("alerting: {e}"));
        }
        if errs.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(errs)) }
    }

    /// The enable mask for the kernel (bit N = event type N). `connect`
    /// covers AF_UNIX connects too (they are `connect` events in the stream).
    pub fn enabled_mask(&self) -> u64 {
        use sensor_bpf::wire::{EV_CONNECT, EV_UNIX_CONNECT, type_from_name};
        let mask = self.kernel.events.iter().filter_map(|n| type_from_name(n)).fold(0u64, |m, t| m | (1 << t));
        if mask & (1 << EV_CONNECT) != 0 { mask | (1 << EV_UNIX_CONNECT) } else { mask }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        c.validate().unwrap();
        assert_eq!(c.kernel.poll_interval_ms, 2);
        assert_eq!(c.enabled_mask().count_ones(), 25);
    }

    #[test]
    fn connect_covers_unix_connects() {
        use sensor_bpf::wire::{EV_CONNECT, EV_UNIX_CONNECT};
        let c = Config::parse("[kernel]\nevents = [\"connect\"]\n").unwrap();
        assert_eq!(c.enabled_mask(), (1 << EV_CONNECT) | (1 << EV_UNIX_CONNECT));
        let c = Config::parse("[kernel]\nevents = [\"exec\"]\n").unwrap();
        assert_eq!(c.enabled_mask() & (1 << EV_UNIX_CONNECT), 0);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let e = Config::parse("[kernel]\npoll_intervall_ms = 3\n").unwrap_err();
        assert!(e.contains("poll_intervall_ms"), "{e}");
        let e = Config::parse("bogus = 1\n").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_line() {
        let e = Config::parse("[kernel]\npoll_interval_ms = \"fast\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn every_invalid_value_is_reported_at_once() {
        let c = Config::parse(
            r#"
            [kernel]
            events = ["exec", "opne"]
            poll_interval_ms = 0
            [kernel.ring_buffer_kib]
            file = 1000
            [kernel.file_filter]
            ignore_prefixes = ["relative/"]
            watch_only = true
            "#,
        )
        .unwrap();
        let msg = c.validate().unwrap_err().to_string();
        for needle in ["\"opne\"", "poll_interval_ms", "ring_buffer_kib.file", "relative/", "watch_only"] {
            assert!(msg.contains(needle), "missing {needle} in {msg}");
        }
    }

    #[test]
    fn enabled_mask_follows_the_list() {
        let c = Config::parse("[kernel]\nevents = [\"exec\", \"open\"]\n").unwrap();
        assert_eq!(c.enabled_mask(), (1 << 1) | (1 << 4));
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = Config::load(Path::new("/nonexistent/sensor.toml")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/sensor.toml"), "{e}");
    }
}

#[cfg(test)]
mod readme {
    /// The configuration example in README.md parses and validates: the
    /// documentation cannot drift from the schema.
    #[test]
    fn readme_example_is_a_valid_config() {
        let readme = include_str!("../../README.md");
        let start = readme.find("```toml\n").expect("a toml block in README.md") + 8;
        let end = start + readme[start..].find("```").unwrap();
        let cfg = super::Config::parse(&readme[start..end]).unwrap_or_else(|e| panic!("README config: {e}"));
        cfg.validate().unwrap_or_else(|e| panic!("README config: {e}"));
        assert_eq!(cfg.alerting.sinks.len(), 1);
        assert_eq!(cfg.kernel.file_filter.watch_prefixes, vec!["/etc/"]);
    }
}

#[cfg(test)]
mod event_types {
    /// Every event type the kernel side can produce is one a rule may subscribe to.
    #[test]
    fn policy_knows_every_kernel_event_type() {
        for ty in 1..sensor_bpf::wire::EV_TYPE_MAX {
            let name = sensor_bpf::wire::event_kind(ty);
            // raw L7 payloads become http/redis/pg events in the pipeline
            if name != "unknown" && name != "l7" {
                assert!(policy::EVENT_TYPES.contains(&name), "policy::EVENT_TYPES lacks {name}");
            }
        }
        for synthetic in
            ["policy_reload_failed", "audit_degraded", "audit_recovered", "sink_degraded", "sink_recovered"]
        {
            assert!(policy::EVENT_TYPES.contains(&synthetic), "policy::EVENT_TYPES lacks {synthetic}");
        }
    }
}
