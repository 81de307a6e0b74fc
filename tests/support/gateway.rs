//! The built `tapline gateway` as a child process on a free loopback port.

use super::archive::ArchiveRef;
use super::{free_port, tapline_bin, wait_for_port};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable the test gateways read the upstream password from.
pub const PASSWORD_ENV: &str = "TAPLINE_TEST_UPSTREAM_PASSWORD";

/// A running gateway, its archive and its spool.
pub struct GatewayProc {
    pub port: u16,
    pub archive: PathBuf,
    pub key: PathBuf,
    archive_ref: ArchiveRef,
    child: Option<Child>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    log: PathBuf,
    runs: u32,
}

/// Options for starting a gateway.
#[derive(Default)]
pub struct GatewayOpts {
    pub upstream: String,
    pub flush_interval: &'static str,
    pub extra: Vec<String>,
    /// Another archive than a fresh local folder (e.g. az:// on Azurite).
    pub archive: Option<ArchiveRef>,
    /// Extra environment for the gateway process.
    pub env: Vec<(String, String)>,
    /// The gateway id [default: gw-test].
    pub gateway_id: Option<&'static str>,
    /// A sealing key to use instead of a fresh one (two archives sealed by one key).
    pub key: Option<PathBuf>,
}

impl GatewayProc {
    /// Starts a gateway in front of `upstream` with a fresh key, archive and spool.
    pub fn start(opts: GatewayOpts) -> GatewayProc {
        Self::launch(opts, None)
    }

    /// Starts a gateway from a config file body; `{port}` and `{upstream}` in it are
    /// filled in, and the archive, key and spool are set by flags.
    pub fn start_with_config(opts: GatewayOpts, config: &str) -> GatewayProc {
        Self::launch(opts, Some(config.to_string()))
    }

    fn launch(opts: GatewayOpts, config: Option<String>) -> GatewayProc {
        let dir = tempfile::Builder::new()
            .prefix("tapline-gw-")
            .tempdir()
            .unwrap();
        let archive = dir.path().join("archive");
        let key = match &opts.key {
            Some(k) => k.clone(),
            None => {
                let key = dir.path().join("gateway.key");
                let out = Command::new(tapline_bin())
                    .args(["keygen", "--out"])
                    .arg(&key)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "keygen: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                key
            }
        };
        let port = free_port();
        let log = dir.path().join("gateway.log");
        let mut args: Vec<OsString> = vec!["gateway".into()];
        match config {
            Some(body) => {
                let path = dir.path().join("tapline.toml");
                let body = body
                    .replace("{port}", &port.to_string())
                    .replace("{upstream}", &opts.upstream);
                std::fs::write(&path, body).unwrap();
                args.push("--config".into());
                args.push(path.into());
            }
            None => {
                for a in [
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--upstream",
                    &opts.upstream,
                    "--upstream-password-env",
                    PASSWORD_ENV,
                    "--name",
                    "pg-test",
                ] {
                    args.push(a.into());
                }
            }
        }
        let archive_ref = opts.archive.unwrap_or_else(|| ArchiveRef::local(&archive));
        args.extend([
            "--gateway-id".into(),
            opts.gateway_id.unwrap_or("gw-test").into(),
        ]);
        args.extend(["--archive".into(), archive_ref.location.clone().into()]);
        args.extend(["--key".into(), key.clone().into_os_string()]);
        args.extend(["--spool".into(), dir.path().join("spool").into_os_string()]);
        args.extend([
            "--flush-interval".into(),
            opts.flush_interval.into(),
            "--shutdown-grace".into(),
            "3s".into(),
        ]);
        args.extend(opts.extra.iter().map(OsString::from));
        let mut env = archive_ref.env.clone();
        env.extend(opts.env);
        let mut g = GatewayProc {
            port,
            archive,
            key,
            archive_ref,
            child: None,
            args,
            env,
            dir,
            log,
            runs: 0,
        };
        g.spawn(&[]);
        g
    }

    fn spawn(&mut self, extra_env: &[(&str, &str)]) {
        self.runs += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(tapline_bin());
        cmd.args(&self.args)
            .env(PASSWORD_ENV, super::postgres::UPSTREAM_PASSWORD)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start tapline gateway"));
        if !wait_for_port(self.port, Duration::from_secs(20)) {
            panic!("gateway did not start listening:\n{}", self.log());
        }
    }

    /// Starts the gateway again (same port, key, archive and spool) after a stop or a
    /// kill, with extra environment for this run only.
    pub fn restart(&mut self, extra_env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "stop or kill the gateway first");
        self.spawn(extra_env);
    }

    /// Drops a variable from the environment of later runs.
    pub fn remove_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The gateway's status as `tapline gateway status --json` reports it.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(tapline_bin())
            .args(["gateway", "status", "--json", "--spool"])
            .arg(self.spool())
            .output()
            .expect("run tapline gateway status");
        assert!(
            out.status.success(),
            "gateway status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    /// `kill -9`: no cleanup of any kind.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Waits until the log holds `needle` `times` times in all.
    pub fn wait_log(&self, needle: &str, times: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log().matches(needle).count() >= times {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The public key file for `tapline verify --pubkey`.
    pub fn pubkey(&self) -> PathBuf {
        let mut p = self.key.clone().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    }

    /// The gateway's log so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A libpq connection string through the gateway (trusted on loopback).
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres sslmode=prefer",
            self.port
        )
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The local archive folder (when the gateway writes a local archive).
    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// The archive, local or remote, with the environment that reaches it.
    pub fn archive_ref(&self) -> &ArchiveRef {
        &self.archive_ref
    }

    /// The gateway's spool folder.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// The spool's id, part of every segment name.
    pub fn spool_id(&self) -> String {
        std::fs::read_to_string(self.spool().join("spool.id"))
            .expect("the spool has an id once the gateway started")
            .trim()
            .to_string()
    }

    /// The highest spool file number the gateway has claimed.
    pub fn spool_counter(&self) -> u64 {
        std::fs::read_to_string(self.spool().join("spool.counter"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
