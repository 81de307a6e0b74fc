//! The interactive SQL shell of `tapline query` with no SQL: line editing, history
//! in `~/.tapline_history`, statements ended by `;`.

use crate::error::QueryError;
use crate::format::{OutputFormat, write_stream};
use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;

const HELP: &str = "Tables: events, session_checkpoints. Views: sessions, commands.\n\
End statements with `;`. \\d lists tables, \\d NAME shows columns, \\q quits.";

/// Runs the shell until `\q` or end of input.
pub async fn run(ctx: &SessionContext, format: OutputFormat) -> Result<(), QueryError> {
    let mut rl =
        rustyline::DefaultEditor::new().map_err(|e| std::io::Error::other(e.to_string()))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".tapline_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("tapline SQL shell. {HELP}");
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "tapline> "
        } else {
            "     ..> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(std::io::Error::other(e.to_string()).into()),
        };
        let trimmed = line.trim();
        if statement.is_empty() && trimmed.starts_with('\\') {
            let _ = rl.add_history_entry(trimmed);
            match trimmed {
                "\\q" => break,
                "\\?" | "\\h" => println!("{HELP}"),
                "\\d" => run_one(ctx, "SHOW TABLES", format).await,
                other if other.starts_with("\\d ") => {
                    run_one(
                        ctx,
                        &format!("SHOW COLUMNS FROM {}", other[3..].trim()),
                        format,
                    )
                    .await
                }
                other => eprintln!("unknown command {other}; \\? for help"),
            }
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if trimmed.ends_with(';') {
            let sql = std::mem::take(&mut statement);
            let _ = rl.add_history_entry(sql.trim());
            run_one(ctx, sql.trim().trim_end_matches(';'), format).await;
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}

async fn run_one(ctx: &SessionContext, sql: &str, format: OutputFormat) {
    let result = async {
        let stream = ctx.sql(sql).await?.execute_stream().await?;
        write_stream(&mut std::io::stdout().lock(), stream, format).await
    }
    .await;
    if let Err(e) = result {
        eprintln!("error: {e}");
    }
}
