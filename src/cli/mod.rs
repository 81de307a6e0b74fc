//! Glue between clap arguments and the library crates, one file per subcommand.

pub mod approvals;
pub mod archive;
pub mod gateway;
pub mod hash_secret;
pub mod keygen;
pub mod query;
pub mod replay;
pub mod sessions;
pub mod verify;

use anyhow::Context;
use tapline_store::{Archive, ArchiveLocation};

/// Logs go to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Opens an existing archive named by `--archive`, `$TAPLINE_ARCHIVE` or the default.
/// A remote archive is probed once, so a missing container or a bad credential is
/// reported plainly before any query runs.
pub async fn open_archive(flag: Option<&str>) -> anyhow::Result<Archive> {
    let location = ArchiveLocation::from_flag_or_env(flag).context("--archive")?;
    let archive = Archive::open(&location)?;
    archive.probe().await?;
    Ok(archive)
}

/// The filter flags `tapline sessions` and `tapline replay` share.
#[derive(clap::Args)]
pub struct SessionFilterArgs {
    /// Only sessions of this user.
    #[arg(long)]
    user: Option<String>,
    /// Only sessions through this connection.
    #[arg(long)]
    connection: Option<String>,
    /// Only sessions running at or after this time (2026-11-21, RFC 3339, or an age like 2h).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only sessions started at or before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

impl SessionFilterArgs {
    /// The filter, with `contains` for the commands' text.
    pub fn into_filter(
        self,
        contains: Option<String>,
    ) -> anyhow::Result<tapline_query::sessions::SessionFilter> {
        use tapline_query::sessions::parse_time;
        Ok(tapline_query::sessions::SessionFilter {
            user: self.user,
            connection: self.connection,
            since: self.since.map(|t| parse_time("--since", &t)).transpose()?,
            until: self.until.map(|t| parse_time("--until", &t)).transpose()?,
            contains,
        })
    }
}

/// A size for people: bytes below 10 kB, then kB, MB, GB (powers of 1000).
pub fn human_bytes(n: u64) -> String {
    match n {
        0..10_000 => format!("{n} bytes"),
        10_000..10_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        10_000_000..10_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.1} GB", n as f64 / 1e9),
    }
}
