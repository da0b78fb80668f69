//! The sensor daemon: kernel loading, decoding, enrichment and the event
//! pipeline. `main.rs` is only argument parsing and dispatch.

pub mod admin;
pub mod alerts;
pub mod anomaly_glue;
pub mod cli;
pub mod config;
pub mod decode;
pub mod enrich;
pub mod event;
pub mod kernel;
pub mod l7;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod topo;
pub mod topology_cli;
