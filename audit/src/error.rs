//! Error type shared by the store, the reader and the CLI.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading the audit trail.
/// Bad input always ends up here (never a panic) so the CLI can print it and exit non-zero.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("audit database {0} does not exist")]
    Missing(PathBuf),
    #[error("audit database {path} is corrupt or not a SQLite file: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("{path} is not a sensor audit database ({detail})")]
    NotAuditDb { path: PathBuf, detail: String },
    #[error(
        "audit database {path} has schema version {found}, newer than this sensor supports ({supported}); upgrade the sensor"
    )]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "audit database {path} has schema version {found}, older than {supported}; open it once with `sensor run` to migrate"
    )]
    OlderSchema { path: PathBuf, found: i64, supported: i64 },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid audit configuration: {0}")]
    Config(String),
    #[error("the audit store is disabled in the configuration (audit.enabled = false)")]
    Disabled,
    #[error("invalid {what} {value:?}: {reason}")]
    Parse { what: &'static str, value: String, reason: String },
    #[error("audit store is degraded, records are buffered in memory: {0}")]
    Degraded(String),
    /// Key file problems and key/chain mismatches. Never contains key bytes.
    #[error("audit key: {0}")]
    Key(String),
    #[error("audit writer thread is not running")]
    WriterGone,
}

/// Attach the database path to a rusqlite error, classifying corruption separately
/// because "file is not a database" deserves a clearer message than a raw SQLite code.
pub(crate) fn sql_err(path: &std::path::Path) -> impl Fn(rusqlite::Error) -> AuditError + '_ {
    move |e| {
        use rusqlite::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && matches!(f.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        {
            return AuditError::Corrupt { path: path.to_path_buf(), detail: e.to_string() };
        }
        AuditError::Sqlite { path: path.to_path_buf(), source: e }
    }
}
