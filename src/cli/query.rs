//! `tapline query`: SQL over the archive.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tapline_query::export::{AtomicOutput, write_parquet};
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
    format: QueryFormat,
    /// Write the result to this file instead of the terminal.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

/// What `--format` asks for: printed rows, or a Parquet file.
#[derive(Clone, Copy)]
enum QueryFormat {
    Print(OutputFormat),
    Parquet,
}

impl std::str::FromStr for QueryFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "parquet" => Ok(QueryFormat::Parquet),
            other => other
                .parse()
                .map(QueryFormat::Print)
                .map_err(|e| format!("{e}, or parquet")),
        }
    }
}

pub async fn run(args: QueryArgs) -> anyhow::Result<ExitCode> {
    const PARQUET_NEEDS_FILE: &str = "--format parquet writes a file: add --output FILE";
    if matches!(args.format, QueryFormat::Parquet) && args.output.is_none() {
        bail!(PARQUET_NEEDS_FILE);
    }
    let archive = super::open_archive(args.archive.as_deref()).await?;
    let ctx = open_context(&archive).await?;
    let Some(sql) = args.sql else {
        if args.output.is_some() {
            bail!("--output needs the SQL to run; the interactive shell prints to the terminal");
        }
        let QueryFormat::Print(format) = args.format else {
            bail!(
                "--format parquet needs the SQL to run; the interactive shell prints to the terminal"
            );
        };
        shell::run(&ctx, format).await?;
        return Ok(ExitCode::SUCCESS);
    };
    let stream = ctx.sql(&sql).await?.execute_stream().await?;
    match (&args.output, args.format) {
        (Some(path), QueryFormat::Parquet) => {
            let rows = write_parquet(path, stream).await?;
            eprintln!("wrote {rows} row(s) to {}", path.display());
        }
        (Some(path), QueryFormat::Print(format)) => {
            let mut out = AtomicOutput::create(path)?;
            let mut buffered = std::io::BufWriter::new(out.file());
            write_stream(&mut buffered, stream, format).await?;
            std::io::Write::flush(&mut buffered)
                .with_context(|| format!("--output: cannot write {}", path.display()))?;
            drop(buffered);
            out.commit()?;
        }
        (None, QueryFormat::Print(format)) => {
            write_stream(&mut std::io::stdout().lock(), stream, format).await?
        }
        (None, QueryFormat::Parquet) => bail!(PARQUET_NEEDS_FILE),
    }
    Ok(ExitCode::SUCCESS)
}
