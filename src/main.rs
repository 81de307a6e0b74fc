//! The `tapline` command: clap wiring only. Each subcommand's glue lives in `cli/`,
//! the work in the `tapline-*` crates.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Forensic session recorder: a tap-mode gateway that records hash-chained, sealed
/// sessions into Parquet, and the tools to list, query and verify them.
#[derive(Parser)]
#[command(name = "tapline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Gateway(Box<cli::gateway::GatewayArgs>),
    Archive(cli::archive::ArchiveArgs),
    Sessions(cli::sessions::SessionsArgs),
    Query(cli::query::QueryArgs),
    Replay(cli::replay::ReplayArgs),
    Verify(cli::verify::VerifyArgs),
    Keygen(cli::keygen::KeygenArgs),
    HashSecret(cli::hash_secret::HashSecretArgs),
    Approvals(cli::approvals::ApprovalsArgs),
    Approve(cli::approvals::ApproveArgs),
    Deny(cli::approvals::DenyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Gateway(a) => cli::gateway::run(*a).await,
            Command::Archive(a) => cli::archive::run(a).await,
            Command::Sessions(a) => cli::sessions::run(a).await,
            Command::Query(a) => cli::query::run(a).await,
            Command::Replay(a) => cli::replay::run(a).await,
            Command::Verify(a) => cli::verify::run(a).await,
            Command::Keygen(a) => cli::keygen::run(a),
            Command::HashSecret(a) => cli::hash_secret::run(a),
            Command::Approvals(a) => cli::approvals::list(a).await,
            Command::Approve(a) => cli::approvals::approve(a).await,
            Command::Deny(a) => cli::approvals::deny(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
