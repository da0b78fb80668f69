//! Operator configuration: the `[policy]` table of the sensor's TOML config.

use crate::model::Severity;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Policy settings. Embedded by the sensor under `[policy]`.
///
/// ```toml
/// [policy]
/// rules_dirs = ["/etc/sensor/rules"]
/// cache_size = 4096
/// [policy.overrides.read_shadow]
/// severity = "critical"
/// exceptions = [{ exe = "/usr/sbin/backup*" }, { container = "3f2a*", path = "/etc/gshadow" }]
/// [policy.overrides.shell_in_container]
/// enabled = false
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Load the rule set embedded in the binary.
    pub default_rules: bool,
    /// Extra rule directories (searched recursively for .rego, .json, .yaml, .yml).
    pub rules_dirs: Vec<PathBuf>,
    /// A JSON, YAML or TOML file with the same shape as `overrides`; merged under
    /// the inline `overrides` (inline settings win, exceptions add up). Watched.
    pub overrides_file: Option<PathBuf>,
    /// Per-rule overrides keyed by rule id; the key `"*"` holds exceptions that apply
    /// to every rule.
    pub overrides: BTreeMap<String, RuleOverride>,
    /// Decision-cache entries (0 disables the cache).
    pub cache_size: usize,
    /// VM instructions one rule may execute for one event (0 = unlimited).
    pub max_instructions: usize,
    /// Wall-clock budget of one rule for one event, in microseconds (0 = unlimited).
    pub eval_timeout_us: u64,
    /// Reload when a rule, data or overrides file changes.
    pub watch: bool,
    /// Polling period of the file watcher.
    pub watch_interval_ms: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            default_rules: true,
            rules_dirs: Vec::new(),
            overrides_file: None,
            overrides: BTreeMap::new(),
            cache_size: 4096,
            max_instructions: 100_000,
            eval_timeout_us: 10_000,
            watch: true,
            watch_interval_ms: 1000,
        }
    }
}

/// Operator changes to one rule, applied without editing it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleOverride {
    /// `false` disables the rule.
    pub enabled: Option<bool>,
    /// Replaces the rule's severity.
    pub severity: Option<Severity>,
    /// Alerts matching any exception are silenced (and counted as suppressed).
    pub exceptions: Vec<Exception>,
}

/// Silences a rule for events matching every field given. Each field takes one
/// value or a list (any may match). String fields are globs (`*` stays within a
/// path segment, `**` crosses segments).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Exception {
    /// `process.exe`
    #[serde(deserialize_with = "one_or_many")]
    pub exe: Vec<String>,
    /// `process.comm`
    #[serde(deserialize_with = "one_or_many")]
    pub comm: Vec<String>,
    /// `process.container_id`
    #[serde(deserialize_with = "one_or_many")]
    pub container: Vec<String>,
    /// `file.path`
    #[serde(deserialize_with = "one_or_many")]
    pub path: Vec<String>,
    /// `process.uid`
    #[serde(deserialize_with = "one_or_many")]
    pub uid: Vec<u32>,
    /// Free text for humans (why this exception exists).
    pub comment: Option<String>,
}

impl Exception {
    pub(crate) fn is_empty(&self) -> bool {
        self.exe.is_empty()
            && self.comm.is_empty()
            && self.container.is_empty()
            && self.path.is_empty()
            && self.uid.is_empty()
    }
}

fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// Merges `inline` over `base`: scalar settings from `inline` win, exceptions add up.
pub(crate) fn merge_overrides(
    mut base: BTreeMap<String, RuleOverride>,
    inline: &BTreeMap<String, RuleOverride>,
) -> BTreeMap<String, RuleOverride> {
    for (rule, o) in inline {
        let entry = base.entry(rule.clone()).or_default();
        if o.enabled.is_some() {
            entry.enabled = o.enabled;
        }
        if o.severity.is_some() {
            entry.severity = o.severity;
        }
        entry.exceptions.extend(o.exceptions.iter().cloned());
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_with_one_or_many_fields() {
        let cfg: PolicyConfig = toml::from_str(
            r#"
            cache_size = 10
            [overrides.read_shadow]
            severity = "critical"
            exceptions = [{ exe = "/usr/sbin/backup*" }, { uid = [0, 1000], path = "/etc/gshadow" }]
            [overrides.other]
            enabled = false
            "#,
        )
        .unwrap();
        assert_eq!(cfg.cache_size, 10);
        assert!(cfg.default_rules, "unset fields take defaults");
        let o = &cfg.overrides["read_shadow"];
        assert_eq!(o.severity, Some(Severity::Critical));
        assert_eq!(o.exceptions[0].exe, ["/usr/sbin/backup*"]);
        assert_eq!(o.exceptions[1].uid, [0, 1000]);
        assert_eq!(cfg.overrides["other"].enabled, Some(false));
    }

    #[test]
    fn rejects_unknown_fields_and_severities() {
        let err = toml::from_str::<PolicyConfig>("cache_sise = 1").unwrap_err();
        assert!(err.to_string().contains("cache_sise"), "{err}");
        let err = toml::from_str::<PolicyConfig>("[overrides.x]\nseverity = \"severe\"").unwrap_err();
        assert!(err.to_string().contains("severe"), "{err}");
    }
}
