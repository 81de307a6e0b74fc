//! `tapline hash-secret`: a SCRAM-SHA-256 verifier for a client secret.

use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use tapline_recorder::protocol::postgres::scram::ScramVerifier;

/// Turn a client secret into the verifier a connection's `[connections.users]` stores.
///
/// The secret is read from standard input (one line), so it stays out of shell history.
/// The gateway keeps only the verifier; clients log in with SCRAM-SHA-256, so the
/// secret never crosses the wire either.
///
/// Example: echo -n 's3cret' | tapline hash-secret
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct HashSecretArgs {
    /// PBKDF2 iterations; PostgreSQL's default is 4096.
    #[arg(long, default_value_t = 4096)]
    iterations: u32,
}

pub fn run(args: HashSecretArgs) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("secret: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        !secret.is_empty(),
        "the secret is empty; pipe it on standard input"
    );
    anyhow::ensure!(
        args.iterations >= 1024,
        "--iterations must be at least 1024"
    );
    println!("{}", ScramVerifier::derive(secret, args.iterations));
    Ok(ExitCode::SUCCESS)
}
