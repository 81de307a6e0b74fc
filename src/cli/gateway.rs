//! `tapline gateway`: run the recording gateway.

use anyhow::Context;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapline_recorder::config::{ConfigFile, ConnectionSection, GatewaySection, Origin};
use tapline_recorder::{Gateway, GatewayConfig};
use tapline_store::{Archive, ArchiveLocation, GatewayKey};

/// The key used when neither --key nor the config names one; created on first run.
const DEFAULT_KEY: &str = "tapline.key";

/// Run the gateway: listen, authenticate, forward, record.
///
/// Either give a config file with several [[connections]], or the quick flags for one
/// PostgreSQL connection. With a loopback --listen and no secrets, clients are trusted;
/// any other address needs per-user secrets in a config file.
///
/// Examples:
///   PGPASSWORD_APP=… tapline gateway --listen 127.0.0.1:6432 \
///       --upstream postgres://app@127.0.0.1:5432/appdb --upstream-password-env PGPASSWORD_APP
///   tapline gateway --config /etc/tapline/tapline.toml
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub struct GatewayArgs {
    /// A TOML config file declaring [gateway] and [[connections]].
    #[arg(long, value_name = "FILE", conflicts_with_all = ["listen", "upstream"])]
    config: Option<PathBuf>,
    /// Quick mode: the address clients connect to.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Quick mode: postgres://USER@HOST:PORT/DB the gateway logs in to (no password here).
    #[arg(long, value_name = "URL", requires = "listen")]
    upstream: Option<String>,
    /// Quick mode: the environment variable holding the upstream password.
    #[arg(long, value_name = "VAR")]
    upstream_password_env: Option<String>,
    /// Quick mode: a file holding the upstream password.
    #[arg(long, value_name = "FILE")]
    upstream_password_file: Option<PathBuf>,
    /// Quick mode: the connection's name in the archive.
    #[arg(long, value_name = "NAME", default_value = "default")]
    name: String,
    /// Archive folder or file:// URL [default: $TAPLINE_ARCHIVE or ./tapline-archive].
    #[arg(long, value_name = "PATH_OR_URL")]
    archive: Option<String>,
    /// The ed25519 sealing key (from `tapline keygen`) [default: ./tapline.key, created if missing].
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// How often segments roll, so live sessions become queryable, e.g. 5s.
    #[arg(long, value_name = "DURATION")]
    flush_interval: Option<String>,
    /// This gateway's id in file names and the gateway_id column [default: host name].
    #[arg(long, value_name = "ID")]
    gateway_id: Option<String>,
    /// How long live sessions may finish after SIGTERM/SIGINT, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    shutdown_grace: Option<String>,
}

fn load_config(args: &GatewayArgs) -> anyhow::Result<GatewayConfig> {
    let (mut file, origin) = match &args.config {
        Some(path) => (ConfigFile::read(path)?, Origin::File(path.clone())),
        None => {
            let Some(listen) = &args.listen else {
                anyhow::bail!(
                    "give --config FILE, or --listen ADDR with --upstream URL; see `tapline gateway --help`"
                );
            };
            let upstream = args
                .upstream
                .clone()
                .context("--upstream is required with --listen, e.g. --upstream postgres://app@127.0.0.1:5432/appdb")?;
            let file = ConfigFile {
                gateway: GatewaySection::default(),
                connections: vec![ConnectionSection {
                    name: Some(args.name.clone()),
                    protocol: Some("postgres".into()),
                    listen: Some(listen.clone()),
                    upstream: Some(upstream),
                    upstream_password_env: args.upstream_password_env.clone(),
                    upstream_password_file: args.upstream_password_file.clone(),
                    ..Default::default()
                }],
            };
            (file, Origin::Flags)
        }
    };
    // Flags override the file's [gateway] settings.
    let g = &mut file.gateway;
    if args.archive.is_some() {
        g.archive = args.archive.clone();
    }
    if args.key.is_some() {
        g.key = args.key.clone();
    }
    if args.flush_interval.is_some() {
        g.flush_interval = args.flush_interval.clone();
    }
    if args.gateway_id.is_some() {
        g.id = args.gateway_id.clone();
    }
    if args.shutdown_grace.is_some() {
        g.shutdown_grace = args.shutdown_grace.clone();
    }
    Ok(GatewayConfig::validate(file, &origin)?)
}

fn load_key(configured: Option<&Path>) -> anyhow::Result<GatewayKey> {
    match configured {
        Some(path) => Ok(GatewayKey::load(path)?),
        None => {
            let path = Path::new(DEFAULT_KEY);
            if path.exists() {
                Ok(GatewayKey::load(path)?)
            } else {
                let key = GatewayKey::generate();
                key.write(path)?;
                tracing::warn!(
                    key = %path.display(),
                    id = %key.id(),
                    "no --key given: created a new sealing key; keep it, and give {}.pub to auditors",
                    path.display()
                );
                Ok(key)
            }
        }
    }
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args)?;
    let key = load_key(config.key.as_deref())?;
    let location = ArchiveLocation::from_flag_or_env(config.archive.as_deref())?;
    let archive = Archive::create(&location)?;
    tracing::info!(archive = %location, gateway = %config.id, key_id = %key.id(), "starting");
    let gateway = Gateway::bind(config, archive, key).await?;
    let summary = gateway.run(stop_signal()).await?;
    if summary.sessions_cut > 0 {
        tracing::info!(
            sessions = summary.sessions_cut,
            "sessions were closed by the shutdown"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
