//! The built `tapline gateway` as a child process on a free loopback port.

use super::{free_port, tapline_bin, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable the test gateways read the upstream password from.
pub const PASSWORD_ENV: &str = "TAPLINE_TEST_UPSTREAM_PASSWORD";

/// A running gateway and its archive.
pub struct GatewayProc {
    pub port: u16,
    pub archive: PathBuf,
    pub key: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

/// Options for starting a gateway.
pub struct GatewayOpts {
    pub upstream: String,
    pub flush_interval: &'static str,
    pub extra: Vec<String>,
}

impl GatewayProc {
    /// Starts a gateway in front of `upstream` with a fresh key and archive.
    pub fn start(opts: GatewayOpts) -> GatewayProc {
        Self::launch(opts, None)
    }

    /// Starts a gateway from a config file body; `{port}` and `{upstream}` in it are
    /// filled in, and the archive and key are set by flags.
    pub fn start_with_config(opts: GatewayOpts, config: &str) -> GatewayProc {
        Self::launch(opts, Some(config.to_string()))
    }

    fn launch(opts: GatewayOpts, config: Option<String>) -> GatewayProc {
        let dir = tempfile::Builder::new()
            .prefix("tapline-gw-")
            .tempdir()
            .unwrap();
        let archive = dir.path().join("archive");
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
        let port = free_port();
        let log = dir.path().join("gateway.log");
        let mut cmd = Command::new(tapline_bin());
        cmd.arg("gateway");
        match config {
            Some(body) => {
                let path = dir.path().join("tapline.toml");
                let body = body
                    .replace("{port}", &port.to_string())
                    .replace("{upstream}", &opts.upstream);
                std::fs::write(&path, body).unwrap();
                cmd.arg("--config").arg(path);
            }
            None => {
                cmd.args(["--listen", &format!("127.0.0.1:{port}")])
                    .args(["--upstream", &opts.upstream])
                    .args(["--upstream-password-env", PASSWORD_ENV, "--name", "pg-test"]);
            }
        }
        let child = cmd
            .args(["--gateway-id", "gw-test"])
            .arg("--archive")
            .arg(&archive)
            .arg("--key")
            .arg(&key)
            .args([
                "--flush-interval",
                opts.flush_interval,
                "--shutdown-grace",
                "3s",
            ])
            .args(&opts.extra)
            .env(PASSWORD_ENV, super::postgres::UPSTREAM_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tapline gateway");
        let mut g = GatewayProc {
            port,
            archive,
            key,
            child: Some(child),
            _dir: dir,
            log,
        };
        if !wait_for_port(port, Duration::from_secs(20)) {
            panic!("gateway did not start listening:\n{}", g.log());
        }
        g.child.as_mut().map(|c| c.try_wait());
        g
    }

    /// The public key file for `tapline verify --pubkey`.
    pub fn pubkey(&self) -> PathBuf {
        let mut p = self.key.clone().into_os_string();
        p.push(".pub");
        PathBuf::from(p)
    }

    /// The gateway's log so far.
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
        for _ in 0..300 {
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

    /// The archive folder.
    pub fn archive(&self) -> &Path {
        &self.archive
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
