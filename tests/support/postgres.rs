//! A throw-away PostgreSQL server from the installed binaries (initdb, pg_ctl), on a
//! free loopback port in a temp dir, stopped on drop. The server requires a password
//! (SCRAM-SHA-256) for its one user, so tests exercise the gateway's held credential.

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The upstream login the gateway holds.
pub const UPSTREAM_USER: &str = "tapline_up";
pub const UPSTREAM_PASSWORD: &str = "upstream-S3cret-Do-Not-Leak";

/// A running throw-away server.
pub struct PgServer {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn find_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("TAPLINE_PG_BIN") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .filter(|p| p.join("initdb").exists())
        .expect("PostgreSQL server binaries (initdb, pg_ctl) are not installed; install the postgresql package")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a server binary, as the `postgres` user when we are root (PostgreSQL refuses
/// to run as root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl PgServer {
    /// initdb + pg_ctl start with SCRAM-SHA-256; panics with the server log on failure.
    pub fn start() -> PgServer {
        Self::start_with_auth("scram-sha-256")
    }

    /// Starts a server whose pg_hba asks for `method` (`scram-sha-256`, `md5` or
    /// `password`), with the upstream password stored to match.
    pub fn start_with_auth(method: &str) -> PgServer {
        Self::start_inner(method, None)
    }

    /// Starts a server with `ssl=on` serving `cert` and `key` (PEM), whose pg_hba has
    /// only `hostssl` lines: as Azure Database for PostgreSQL, it refuses clear text.
    pub fn start_tls(cert: &Path, key: &Path) -> PgServer {
        Self::start_inner("scram-sha-256", Some((cert, key)))
    }

    fn start_inner(method: &str, tls: Option<(&Path, &Path)>) -> PgServer {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("tapline-pg-")
            .tempdir()
            .expect("temp dir");
        let root = is_root();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, UPSTREAM_PASSWORD).unwrap();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let out = pg_command(&bin, "initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                method,
                "-U",
                UPSTREAM_USER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("server.log");
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off -c max_connections=200 -c shared_buffers=32MB",
            dir.path().display()
        );
        if let Some((cert, key)) = tls {
            // The server reads its key only if no one else may (0600, its owner).
            let (c, k) = (data.join("server.crt"), data.join("server.key"));
            std::fs::copy(cert, &c).unwrap();
            std::fs::copy(key, &k).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
            if root {
                let status = Command::new("chown")
                    .arg("postgres")
                    .args([&c, &k])
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            std::fs::write(
                data.join("pg_hba.conf"),
                format!("hostssl all all 127.0.0.1/32 {method}\n"),
            )
            .unwrap();
            opts.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let out = pg_command(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(&log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let server = PgServer { port, dir, bin };
        if method == "md5" {
            // initdb -A md5 stores the password as md5, as md5 login needs.
            let stored = server.psql_direct(
                "postgres",
                &format!(
                    "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = '{UPSTREAM_USER}'"
                ),
            );
            assert_eq!(stored, "md5");
        }
        server
    }

    /// A URL for the gateway's --upstream (no password).
    pub fn upstream_url(&self, db: &str) -> String {
        format!("postgres://{UPSTREAM_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// A direct connection string with the password, for setup and comparisons.
    pub fn direct_conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={UPSTREAM_USER} password={UPSTREAM_PASSWORD} dbname={db}",
            self.port
        )
    }

    /// Runs SQL directly with psql (not through the gateway).
    pub fn psql_direct(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(self.direct_conninfo(db))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's data folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = pg_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
