//! `tapline sessions`: list recorded sessions.

use clap::Args;
use std::process::ExitCode;
use tapline_query::format::write_stream;
use tapline_query::{OutputFormat, open_context};

/// List recorded sessions, oldest first.
///
/// Examples:
///   tapline sessions --since 2h
///   tapline sessions --user alice --contains "DROP TABLE" --format json
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct SessionsArgs {
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    #[command(flatten)]
    filter: super::SessionFilterArgs,
    /// Only sessions where a command or result contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    contains: Option<String>,
    /// Output format: table, csv or json.
    #[arg(long, default_value = "table")]
    format: OutputFormat,
}

pub async fn run(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let filter = args.filter.into_filter(args.contains)?;
    let ctx = open_context(&archive).await?;
    let stream = ctx
        .sql(&filter.listing_sql())
        .await?
        .execute_stream()
        .await?;
    write_stream(&mut std::io::stdout().lock(), stream, args.format).await?;
    Ok(ExitCode::SUCCESS)
}
