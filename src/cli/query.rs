//! `tapline query`: SQL over the archive.

use clap::Args;
use std::process::ExitCode;
use tapline_query::format::write_stream;
use tapline_query::{OutputFormat, open_context, shell};

/// Run SQL over the archive, or open an interactive SQL shell when no SQL is given.
///
/// Tables: events (one row per event), session_checkpoints (every seal).
/// Views: sessions (one row per session), commands (each command with its result).
///
/// Examples:
///   tapline query "SELECT user, count(*) FROM commands GROUP BY user"
///   tapline query "SELECT command, sqlstate, error_message FROM commands WHERE status = 'error'" --format csv
///   tapline query
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct QueryArgs {
    /// The SQL to run; omit it for the interactive shell.
    sql: Option<String>,
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// Output format: table, csv or json.
    #[arg(long, default_value = "table")]
    format: OutputFormat,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let ctx = open_context(&archive).await?;
    match args.sql {
        Some(sql) => {
            let stream = ctx.sql(&sql).await?.execute_stream().await?;
            write_stream(&mut std::io::stdout().lock(), stream, args.format).await?;
        }
        None => shell::run(&ctx, args.format).await?,
    }
    Ok(ExitCode::SUCCESS)
}
