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
///   tapline replay 'tapline://replay/01JDB2V8W9X4C7Q3M5N6P8R0ST?archive=az%3A%2F%2Ftapline%2Fprod%2F'
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct ReplayArgs {
    /// The session to play (an id, or a tapline://replay/… link from session_url()); omit it to browse.
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
    // A link names its archive; --archive, when given, still wins.
    let link = args
        .session
        .as_deref()
        .and_then(tapline_query::session_link::parse);
    let archive_flag = args
        .archive
        .clone()
        .or_else(|| link.as_ref().and_then(|l| l.archive.clone()));
    let session = match link {
        Some(l) => Some(l.session_id),
        None => args.session,
    };
    let archive = super::open_archive(archive_flag.as_deref()).await?;
    let filter = args.filter.into_filter(None)?;
    let source = ArchiveSource::open(archive).await?;
    tapline_replay_tui::run(
        source,
        ReplayOptions {
            session,
            filter,
            follow: args.follow,
        },
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
