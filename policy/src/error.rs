//! Load/validation errors, each pointing at a file position and, when known, a rule.

use serde::Serialize;
use std::fmt;

/// What class of problem a [`PolicyError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A file or directory could not be read.
    Io,
    /// Rego that does not parse.
    Syntax,
    /// Rego that parses but does not compile (unsafe variables, conflicts, ...).
    Compile,
    /// `metadata` missing, not a constant object, or with a wrong field.
    Metadata,
    /// `metadata.events` names an event type the sensor does not produce.
    UnknownEventType,
    /// `metadata.severity` (or an override) is not info|low|medium|high|critical.
    UnknownSeverity,
    /// A rule package without an `alert` rule.
    MissingAlert,
    /// Two rules with the same id.
    DuplicateRule,
    /// A JSON/YAML data document that does not parse or conflicts with another.
    Data,
    /// An override that names an unknown rule or has an invalid exception.
    Override,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Io => "io error",
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Compile => "compile error",
            ErrorKind::Metadata => "invalid metadata",
            ErrorKind::UnknownEventType => "unknown event type",
            ErrorKind::UnknownSeverity => "unknown severity",
            ErrorKind::MissingAlert => "missing alert rule",
            ErrorKind::DuplicateRule => "duplicate rule id",
            ErrorKind::Data => "invalid data document",
            ErrorKind::Override => "invalid override",
        };
        f.write_str(s)
    }
}

/// One problem found while loading a policy set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct PolicyError {
    /// Source name: a path, or `embedded:<relative path>` for built-in rules.
    pub file: String,
    /// 1-based; 0 when the problem is not tied to a position (e.g. unreadable file).
    pub line: u32,
    pub col: u32,
    /// Rule id, when the file is a rule.
    pub rule: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
}

impl PolicyError {
    pub(crate) fn new(
        file: impl Into<String>,
        (line, col): (u32, u32),
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        PolicyError { file: file.into(), line, col, rule: None, kind, message: message.into() }
    }

    pub(crate) fn with_rule(mut self, rule: Option<&str>) -> Self {
        self.rule = rule.map(str::to_string);
        self
    }

    /// Turns a regorus error (rendered as `--> file:line:col ... error: msg`) into a
    /// positioned error; falls back to `default_file` when no position is present.
    pub(crate) fn from_regorus(default_file: &str, kind: ErrorKind, err: &anyhow::Error) -> Self {
        let text = format!("{err:#}");
        if let Some((file, line, col, msg)) = parse_regorus_location(&text) {
            return PolicyError::new(file, (line, col), kind, msg);
        }
        PolicyError::new(default_file, (0, 0), kind, text.trim().to_string())
    }
}

fn parse_regorus_location(text: &str) -> Option<(String, u32, u32, String)> {
    let start = text.find("--> ")? + 4;
    let loc = text[start..].lines().next()?;
    let mut parts = loc.rsplitn(3, ':');
    let col = parts.next()?.trim().parse().ok()?;
    let line = parts.next()?.trim().parse().ok()?;
    let file = parts.next()?.to_string();
    let msg = match text.rfind("error: ") {
        Some(i) => text[i + 7..].trim().to_string(),
        None => text.trim().to_string(),
    };
    Some((file, line, col, msg))
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.col)?;
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule}: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// Every problem found in a policy set; the set is rejected if this is non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub fn errors(&self) -> &[PolicyError] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The fields of the `policy_reload_failed` event the sensor emits when a reload
    /// is rejected (the caller adds `ts` and `host`).
    pub fn reload_failed_event(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "policy_reload_failed",
            "error_count": self.0.len(),
            "errors": self.0,
        })
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} policy error(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_regorus_positions() {
        let text = "\n--> rules/a.rego:5:3\n  |\n5 | }\n  | ^\nerror: expecting expression";
        let (file, line, col, msg) = parse_regorus_location(text).unwrap();
        assert_eq!((file.as_str(), line, col), ("rules/a.rego", 5, 3));
        assert_eq!(msg, "expecting expression");
    }
}
