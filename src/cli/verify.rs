//! `tapline verify`: recompute every chain and check every seal.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tapline_query::open_context;
use tapline_query::verify::verify_archive;
use tapline_store::TrustedKeys;

/// Recompute every session's hash chain and check every seal.
///
/// Prints one line per session; for a broken one, the first seq where it breaks and
/// why: modified, missing, reordered or inserted event, truncated session, rewritten
/// chain or bad signature. Exits 1 when anything fails.
///
/// Pin the gateway's public key with --pubkey; without it, the keys the gateways
/// published in the archive's keys/ folder are used (and the output says so).
///
/// Examples:
///   tapline verify --pubkey tapline.key.pub
///   tapline verify --session 01JD3Z8X5M4V6Q2N7K9T0R1S2W --pubkey tapline.key.pub
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// Verify only this session.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Trust seals made with this public key (repeatable).
    #[arg(long, value_name = "FILE")]
    pubkey: Vec<PathBuf>,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let mut keys = TrustedKeys::default();
    for p in &args.pubkey {
        keys.add_file(p)?;
    }
    if keys.is_empty() {
        keys = archive.published_keys().await?;
        eprintln!(
            "note: no --pubkey given; trusting the keys published in the archive's keys/ folder. \
             Pass --pubkey to pin the gateway's key."
        );
    }
    let ctx = open_context(&archive).await?;
    let verdicts = verify_archive(&ctx, args.session.as_deref(), &keys, |v| {
        println!("{}  {}", v.session_id, v.status_line());
    })
    .await?;
    let broken = verdicts.iter().filter(|v| !v.is_ok()).count();
    println!(
        "{} session(s) checked, {} ok, {} broken",
        verdicts.len(),
        verdicts.len() - broken,
        broken
    );
    Ok(if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
