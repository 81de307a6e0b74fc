//! `tapline gateway`: run the recording gateway.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapline_recorder::config::{
    ByteSize, ConfigFile, ConnectionSection, DEFAULT_SPOOL, ListenerSection, Origin,
    ProtocolSection,
};
use tapline_recorder::protocol::postgres::config::PostgresSection;
use tapline_recorder::{Gateway, GatewayConfig};
use tapline_store::spool::{BacklogStatus, read_status, spool_is_locked};
use tapline_store::{Archive, ArchiveLocation, GatewayKey};

/// The key used when neither --key nor the config names one; created on first run.
const DEFAULT_KEY: &str = "tapline.key";

/// Run the gateway: listen, authenticate, forward, record.
///
/// Either give a config file with several [[connections]], or the quick flags for one
/// PostgreSQL connection. With a loopback --listen and no secrets, clients are trusted;
/// any other address needs per-user secrets in a config file.
///
/// Every event goes to a local spool first and streams from there into the archive,
/// so an unreachable archive or a killed gateway loses nothing that was spooled.
///
/// Examples:
///   PGPASSWORD_APP=… tapline gateway --listen 127.0.0.1:6432 \
///       --upstream postgres://app@127.0.0.1:5432/appdb --upstream-password-env PGPASSWORD_APP
///   tapline gateway --config /etc/tapline/tapline.toml
///   tapline gateway --listen 127.0.0.1:6432 --upstream postgres://app@db:5432/app \
///       --archive az://tapline/prod --spool /var/lib/tapline/spool --durability sync
///   tapline gateway status --spool /var/lib/tapline/spool
#[derive(Args)]
#[command(verbatim_doc_comment, args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    #[command(subcommand)]
    action: Option<GatewayAction>,
    /// A TOML config file declaring [gateway], [[connections]] and what the gateway
    /// enforces: [policy], [[deny]], [masking], [[mask]], [approvals], [[approve]]
    /// (see the README).
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
    /// Archive folder, file:// URL or az://CONTAINER/PREFIX [default: $TAPLINE_ARCHIVE or ./tapline-archive].
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
    /// The local spool folder, one per gateway [default: ./tapline-spool].
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// sync: a result reaches the client only after its event is fsync'd in the spool;
    /// async (default): it does not wait (a kill can lose the last few ms).
    #[arg(long, value_name = "MODE", value_parser = ["sync", "async"])]
    durability: Option<String>,
    /// The most the spool may hold while the archive is unreachable, e.g. 8GiB.
    #[arg(long, value_name = "SIZE")]
    spool_max_bytes: Option<String>,
    /// Cut a segment early when it reaches this size, e.g. 64MiB.
    #[arg(long, value_name = "SIZE")]
    segment_max_bytes: Option<String>,
}

#[derive(Subcommand)]
enum GatewayAction {
    Status(StatusArgs),
}

/// Show a gateway's archive backlog: events and bytes waiting in its spool, the age of
/// the oldest, and the last upload error.
///
/// Reads the status the gateway rewrites every second in its spool folder, so it works
/// for a gateway on this machine without any network port.
#[derive(Args)]
pub struct StatusArgs {
    /// The gateway's spool folder [default: the config's, else ./tapline-spool].
    #[arg(long, value_name = "DIR")]
    spool: Option<PathBuf>,
    /// Read the spool folder from this config file.
    #[arg(long, value_name = "FILE", conflicts_with = "spool")]
    config: Option<PathBuf>,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
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
                connections: vec![ConnectionSection {
                    listener: ListenerSection {
                        name: Some(args.name.clone()),
                        listen: Some(listen.clone()),
                        ..Default::default()
                    },
                    protocol: ProtocolSection::Postgres(PostgresSection {
                        upstream: Some(upstream),
                        upstream_password_env: args.upstream_password_env.clone(),
                        upstream_password_file: args.upstream_password_file.clone(),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
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
    if args.spool.is_some() {
        g.spool = args.spool.clone();
    }
    if args.durability.is_some() {
        g.durability = args.durability.clone();
        // The flag is the operator's last word: it overrides per-connection settings.
        for c in &mut file.connections {
            c.listener.durability = None;
        }
    }
    if let Some(s) = &args.spool_max_bytes {
        file.gateway.spool_max_bytes = Some(ByteSize::Text(s.clone()));
    }
    if let Some(s) = &args.segment_max_bytes {
        file.gateway.segment_max_bytes = Some(ByteSize::Text(s.clone()));
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
    if let Some(GatewayAction::Status(s)) = args.action {
        return status(s);
    }
    let stop = stop_signal()?;
    quiet_panics();
    let config = load_config(&args)?;
    let key = load_key(config.key.as_deref())?;
    let location = ArchiveLocation::from_flag_or_env(config.archive.as_deref())?;
    let archive = Archive::create(&location)?;
    tracing::info!(
        archive = %location,
        spool = %config.spool.display(),
        gateway = %config.id,
        key_id = %key.id(),
        "starting"
    );
    let gateway = Gateway::bind(config, archive, key).await?;
    let summary = gateway.run(stop).await?;
    if summary.sessions_cut > 0 {
        tracing::info!(
            sessions = summary.sessions_cut,
            "sessions were closed by the shutdown"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let spool = match (&args.spool, &args.config) {
        (Some(s), _) => s.clone(),
        (None, Some(c)) => ConfigFile::read(c)?
            .gateway
            .spool
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL)),
        (None, None) => PathBuf::from(DEFAULT_SPOOL),
    };
    let s = read_status(&spool).with_context(|| {
        format!(
            "no gateway status in {}: start a gateway with --spool {} first, or pass the spool folder of a running one",
            spool.display(),
            spool.display()
        )
    })?;
    let running = spool_is_locked(&spool);
    if args.json {
        let mut v = serde_json::to_value(&s)?;
        v["running"] = serde_json::Value::Bool(running);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_status(&s, running));
    }
    Ok(ExitCode::SUCCESS)
}

fn render_status(s: &BacklogStatus, running: bool) -> String {
    let now = tapline_store::event::now_ns();
    let ago = |ts: i64| {
        let secs = ((now - ts).max(0) / 1_000_000_000) as u64;
        humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
    };
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let mut out = String::new();
    let state = if running {
        format!("running (pid {})", s.pid)
    } else {
        format!("not running (last status {} ago)", ago(s.updated_ns))
    };
    out += &format!("gateway         {}  {state}\n", s.gateway_id);
    out += &format!("archive         {}\n", s.archive);
    out += &format!("spool           {}\n", s.spool);
    out += &format!(
        "waiting         {} events, {} of {} ({:.0}%)\n",
        s.events_waiting,
        mib(s.bytes_waiting),
        mib(s.spool_max_bytes),
        100.0 * s.bytes_waiting as f64 / s.spool_max_bytes.max(1) as f64
    );
    out += &format!(
        "oldest waiting  {}\n",
        s.oldest_waiting_ns
            .map(|ts| format!("{} ago", ago(ts)))
            .unwrap_or_else(|| "-".into())
    );
    out += &format!(
        "uploaded        {} events in {} segments{}\n",
        s.events_uploaded,
        s.segments_uploaded,
        s.last_upload_ns
            .map(|ts| format!(", last {} ago", ago(ts)))
            .unwrap_or_default()
    );
    out += &format!(
        "last error      {}\n",
        match (&s.last_upload_error, s.last_upload_error_ns) {
            (Some(e), Some(ts)) => format!("{e} ({} ago)", ago(ts)),
            _ => "-".into(),
        }
    );
    out += &format!(
        "ledger head     {}\n",
        match (s.ledger_head_seq, &s.ledger_head) {
            (Some(seq), Some(h)) => format!(
                "entry {seq} {h}  (keep it elsewhere; `tapline verify --expect-head {}={h}` proves the ledger still reaches it)",
                s.gateway_id
            ),
            _ => "- (nothing uploaded yet)".into(),
        }
    );
    out += &format!(
        "new sessions    {}\n",
        if s.accepting_sessions {
            "accepted"
        } else {
            "refused: the spool is nearly full"
        }
    );
    out
}

/// A panic in a session ends that session alone (the tap catches it); the default
/// hook would print its message, which can quote a value the session carried (a masked
/// card number, a token), to the log. This hook logs where it happened, never what it
/// said.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown".into());
        let thread = std::thread::current();
        tracing::error!(
            at = %location,
            thread = thread.name().unwrap_or("unnamed"),
            "a gateway task panicked (its message is not logged: it may quote recorded values)"
        );
    }));
}

/// Installs the SIGTERM and SIGINT handlers at once and returns a future that resolves
/// on either. Installing them before anything else starts matters: a stop that arrives
/// while the spool is being recovered must end the gateway cleanly, not kill it with the
/// default action half-way through start-up.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| anyhow::anyhow!("cannot install the SIGTERM handler: {e}"))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| anyhow::anyhow!("cannot install the SIGINT handler: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
