//! `sensor`: the binary is thin; each subcommand lives in its own module or crate.

use clap::Parser;
use sensor::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => sensor::run::main(args),
        Command::Probe { json } => {
            let report = sensor::kernel::probe::run_probe();
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            } else {
                print!("{report}");
            }
            ExitCode::SUCCESS
        }
        Command::Policy(cmd) => exit(policy::run_cli(cmd, sensor_rules::FILES)),
        Command::Audit(cmd) => exit(audit::run_cli(cmd)),
        Command::Alerts(cmd) => exit(alerting::run_cli(cmd)),
        Command::Topology(args) => sensor::topology_cli::run(args),
        Command::Baseline(cmd) => exit(anomaly::cli::run_cli(cmd)),
    }
}

fn exit(r: anyhow::Result<i32>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("sensor: {e:#}");
            ExitCode::from(2)
        }
    }
}
