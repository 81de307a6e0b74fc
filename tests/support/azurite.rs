//! Azurite (the Azure Storage emulator, npm package `azurite`) on a free loopback port
//! with its data in a temp folder; stopped when dropped.

use super::archive::ArchiveRef;
use super::{free_port, wait_for_port};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

/// A running (or paused, for outage tests) Azurite blob service.
pub struct Azurite {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// The Azurite blob binary: `$AZURITE_BLOB` or `azurite-blob` on the PATH.
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("AZURITE_BLOB") {
        return p.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("azurite-blob"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("azurite-blob is not on the PATH: install it with `npm install -g azurite` (.ci/run does)")
    })
}

impl Azurite {
    /// Starts Azurite's blob service.
    pub fn start() -> Azurite {
        let dir = tempfile::Builder::new()
            .prefix("tapline-azurite-")
            .tempdir()
            .unwrap();
        let mut a = Azurite {
            port: free_port(),
            dir,
            child: None,
        };
        a.resume();
        a
    }

    /// Starts Azurite again on the same port and data folder.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "Azurite is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("azurite.log"))
            .unwrap();
        let child = Command::new(binary())
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .arg("--location")
            .arg(self.dir.path().join("data"))
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--loose"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start azurite-blob");
        self.child = Some(child);
        if !wait_for_port(self.port, Duration::from_secs(60)) {
            panic!(
                "Azurite did not start listening:\n{}",
                std::fs::read_to_string(self.dir.path().join("azurite.log")).unwrap_or_default()
            );
        }
    }

    /// Stops Azurite gracefully (it saves its metadata), keeping its data folder.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            for _ in 0..200 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The blob endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What object_store needs to talk to this Azurite.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
            ("AZURITE_BLOB_STORAGE_URL".into(), self.url()),
        ]
    }

    /// An az:// archive in this Azurite, its container created with
    /// `tapline archive init`.
    pub fn archive(&self, container: &str, prefix: &str) -> ArchiveRef {
        let a = ArchiveRef {
            location: format!("az://{container}/{prefix}"),
            env: self.env(),
        };
        // Azurite accepts connections a moment before it answers them: retry while
        // it cannot be reached (a real error is reported at once).
        let mut out = a.tapline(&["archive", "init"]);
        for _ in 0..50 {
            if out.status.success()
                || !String::from_utf8_lossy(&out.stderr).contains("cannot reach")
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            out = a.tapline(&["archive", "init"]);
        }
        assert!(
            out.status.success(),
            "archive init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        a
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
