//! Runs the `policy` subcommands without the sensor binary (and without the
//! embedded rule set): `cargo run -p policy --example policy_cli -- check rules/default`.
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: policy::PolicyCommand,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::process::exit(policy::run_cli(cli.cmd, &[])?);
}
