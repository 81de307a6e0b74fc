//! `tapline keygen`: the gateway's ed25519 sealing key.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tapline_store::GatewayKey;

/// Create the ed25519 key a gateway seals sessions with.
///
/// Writes the private key to FILE (mode 0600) and the public key to FILE.pub. Give
/// FILE.pub to auditors: `tapline verify --pubkey FILE.pub` trusts seals made with it.
///
/// Example: tapline keygen --out /etc/tapline/gateway.key
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct KeygenArgs {
    /// Where to write the private key; FILE.pub gets the public key.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = GatewayKey::generate();
    let pub_path = key.write(&args.out)?;
    println!(
        "wrote {} (private, keep it on the gateway) and {} (public); key id {}",
        args.out.display(),
        pub_path.display(),
        key.id()
    );
    Ok(ExitCode::SUCCESS)
}
