//! `tapline query`: SQL over the archive.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tapline_query::export::write_parquet;
use tapline_query::format::write_stream;
use tapline_query::{OutputFormat, open_context, shell};

/// Run SQL over the archive, or open an interactive SQL shell when no SQL is given.
///
/// Tables: events (one row per event), session_checkpoints (every seal).
/// Views: sessions (one row per session), commands (each command with its result).
/// Functions: payload_text(payload), octet_length(payload), session_url(session_id).
///
/// Examples:
///   tapline query "SELECT user, count(*) FROM commands GROUP BY user"
///   tapline query "SELECT command, sqlstate, error_message FROM commands WHERE status = 'error'" --format csv
///   tapline query "SELECT session_id, sum(octet_length(payload)) FROM events WHERE direction = 'server' GROUP BY 1"
///   tapline query "SELECT * FROM events WHERE date = '2026-11-21'" --format parquet --output day.parquet
///   tapline query
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct QueryArgs {
    /// The SQL to run; omit it for the interactive shell.
    sql: Option<String>,
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// Output format: table, csv, json, or parquet (which needs --output).
    #[arg(long, default_value = "table")]
    format: String,
    /// Write the result to this file instead of the terminal.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let parquet = args.format == "parquet";
    let format: OutputFormat = if parquet {
        OutputFormat::Table
    } else {
        args.format
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--format: {e}, or parquet"))?
    };
    if parquet && args.output.is_none() {
        bail!("--format parquet writes a file: add --output FILE");
    }
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let ctx = open_context(&archive).await?;
    let Some(sql) = args.sql else {
        if args.output.is_some() {
            bail!("--output needs the SQL to run; the interactive shell prints to the terminal");
        }
        shell::run(&ctx, format).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let stream = ctx.sql(&sql).await?.execute_stream().await?;
    match (&args.output, parquet) {
        (Some(path), true) => {
            let rows = write_parquet(path, stream).await?;
            eprintln!("wrote {rows} row(s) to {}", path.display());
        }
        (Some(path), false) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("--output: cannot create {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write_stream(&mut out, stream, format).await?;
            std::io::Write::flush(&mut out)
                .with_context(|| format!("--output: cannot write {}", path.display()))?;
        }
        (None, _) => write_stream(&mut std::io::stdout().lock(), stream, format).await?,
    }
    Ok(ExitCode::SUCCESS)
}
