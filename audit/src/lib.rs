//! Tamper-evident audit trail for the sensor: every event and alert goes into a
//! SQLite database (WAL, one batching writer thread), chained with SHA-256 so
//! edits, deletions, insertions and reordering are detected by `verify`, and
//! queried back with `sensor audit query|tail|stats|verify|export`.
//!
//! Writer: [`AuditStore`]. Reader: [`AuditReader`]. CLI: [`AuditCommand`] + [`run_cli`].

mod cli;
mod config;
mod error;
mod index;
mod indexer;
mod keys;
mod ocsf;
mod reader;
mod record;
mod schema;
mod store;
pub mod time;

pub use cli::{
    AuditCommand, DbArg, EXIT_TAMPERED, EXIT_UNVERIFIED, ExportFormat, FilterArgs, OutputFormat, StatsFormat, run_cli,
    run_cli_with,
};
pub use config::{AuditConfig, ByteSize, DEFAULT_DB_PATH, HumanDuration, ReadOpens};
pub use error::AuditError;
pub use keys::{KEY_LEN, generate_key};
pub use ocsf::{OCSF_VERSION, to_ocsf};
pub use reader::{
    AuditReader, DbStats, HeadAnchor, Problem, ProblemKind, QueryFilter, StoredRecord, VerifyOptions, VerifyReport,
};
pub use record::{EventColumns, KIND_ALERT, KIND_EVENT, KIND_MARKER, Severity};
pub use schema::SCHEMA_VERSION;
pub use store::{AuditStats, AuditStore, HealthCallback, HealthEvent};
