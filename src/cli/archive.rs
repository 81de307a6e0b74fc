//! `tapline archive`: prepare an archive location.

use clap::{Args, Subcommand};
use std::process::ExitCode;
use tapline_store::azure::{ContainerInit, create_container};
use tapline_store::{Archive, ArchiveLocation};

/// Prepare an archive location before gateways write to it.
#[derive(Args)]
pub struct ArchiveArgs {
    #[command(subcommand)]
    action: ArchiveAction,
}

#[derive(Subcommand)]
enum ArchiveAction {
    Init(InitArgs),
}

/// Create the archive if it is missing: the Blob container for az://, the folder for a
/// local path. Safe to run again: an existing archive is left as it is.
///
/// Examples:
///   AZURE_STORAGE_ACCOUNT_NAME=acme AZURE_STORAGE_ACCOUNT_KEY=… \
///       tapline archive init --archive az://tapline/prod
///   AZURE_STORAGE_USE_EMULATOR=true tapline archive init --archive az://tapline
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct InitArgs {
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
}

pub async fn run(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    let ArchiveAction::Init(init) = args.action;
    let location = ArchiveLocation::from_flag_or_env(init.archive.as_deref())?;
    match &location {
        ArchiveLocation::Local(dir) => {
            let existed = dir.is_dir();
            Archive::create(&location)?;
            if existed {
                println!(
                    "archive folder {} already exists; nothing to do",
                    dir.display()
                );
            } else {
                println!("created archive folder {}", dir.display());
            }
        }
        ArchiveLocation::Azure { container, .. } => match create_container(container).await? {
            ContainerInit::Created => println!("created container {container} for {location}"),
            ContainerInit::AlreadyExisted => {
                println!("container {container} already exists; nothing to do ({location})")
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
