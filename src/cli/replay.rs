//! `tapline replay`: the terminal viewer.

use clap::Args;
use std::process::ExitCode;
use tapline_replay_tui::{ArchiveSource, ReplayOptions};

/// Step through recorded sessions in the terminal, command by command.
///
/// Without a session id, opens the session browser; Enter plays a session.
/// Inside the player, ? shows every key.
///
/// Examples:
///   tapline replay --since 2h --user alice
///   tapline replay 01JDB2V8W9X4C7Q3M5N6P8R0ST
///   tapline replay 01JDB2V8W9X4C7Q3M5N6P8R0ST --follow --archive az://tapline/prod
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The session to play; omit it to browse.
    session: Option<String>,
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// Keep appending new events of a live session as segments land, like tail -f.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    filter: super::SessionFilterArgs,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let filter = args.filter.into_filter(None)?;
    let source = ArchiveSource::open(archive).await?;
    tapline_replay_tui::run(
        source,
        ReplayOptions {
            session: args.session,
            filter,
            follow: args.follow,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
