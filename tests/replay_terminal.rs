//! `tapline replay` in a real terminal: the built binary runs in a tmux pane against an
//! archive recorded through the gateway from a real PostgreSQL session; keys go in with
//! send-keys and the screen comes back with capture-pane.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::{query_json, tapline, tapline_bin};

/// A tmux server of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server per test: tests run in parallel in one process.
    fn new(test: &str) -> Tmux {
        Tmux {
            socket: format!("tapline-{test}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is installed");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "replay"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "replay", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if s.contains(needle) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn replay_opens_steps_searches_and_restores_the_terminal() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    let psql = Command::new("psql")
        .arg(gw.conninfo("alice"))
        .args(["-X", "-c", "CREATE TABLE pets (id int, name text)"])
        .args(["-c", "INSERT INTO pets VALUES (1, 'Rex'), (2, 'Mimi')"])
        .args(["-c", "SELECT id, name FROM pets ORDER BY id"])
        .args(["-c", "SELECT * FROM no_such_pets"])
        .args(["-c", "SELECT count(*) FROM pets"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&psql.stdout).contains("Mimi"));
    assert!(gw.stop());
    let id = query_json(gw.archive(), "SELECT session_id FROM sessions")[0]["session_id"]
        .as_str()
        .unwrap()
        .to_string();

    // A session that does not exist is refused before any screen is drawn.
    let missing = tapline(gw.archive(), &["replay", "01NOSUCHSESSION0000000000"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no session `01NOSUCHSESSION0000000000`"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&missing.stdout).contains("\x1b[?1049h"),
        "no screen was drawn"
    );

    let tmux = Tmux::new("replay");
    let exit_file = gw.archive().with_file_name("replay.exit");
    let cmd = format!(
        "{} replay {id} --archive {}; echo $? > {}",
        tapline_bin(),
        gw.archive().display(),
        exit_file.display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "replay",
        "-x",
        "150",
        "-y",
        "32",
        "-e",
        "TERM=xterm-256color",
        &cmd,
    ]);
    tmux.run(&["set-option", "-t", "replay", "remain-on-exit", "on"]);

    let s = tmux.wait_for("✔ verified");
    assert!(s.contains(&format!("tapline replay {id}")), "{s}");
    assert!(
        s.contains("✔ verified"),
        "the badge turns verified once checked:\n{s}"
    );
    assert!(s.contains("CREATE TABLE pets"), "{s}");
    assert!(s.contains("SELECT * FROM no_such_pets"), "{s}");
    assert!(s.contains("seq 0"), "{s}");

    // session_start, auth, CREATE, INSERT, SELECT: four steps down.
    tmux.keys(&["j", "j", "j", "j"]);
    let s = tmux.wait_for("Mimi");
    assert!(
        s.contains("name") && s.contains("Rex") && s.contains("Mimi"),
        "{s}"
    );
    assert!(s.contains("2 rows"), "{s}");

    tmux.keys(&["/", "no_such", "Enter"]);
    let s = tmux.wait_for("SQLSTATE 42P01");
    assert!(s.contains("SQLSTATE 42P01"), "{s}");
    assert!(
        s.contains("relation \"no_such_pets\" does not exist"),
        "{s}"
    );

    // From there, a search for an earlier command wraps around, as vim's does.
    tmux.keys(&["/", "CREATE TABLE", "Enter"]);
    let s = tmux.wait_for("continuing at TOP");
    assert!(
        s.contains("search hit BOTTOM, continuing at TOP"),
        "a forward search wraps to the top:\n{s}"
    );
    tmux.keys(&["?", "count(", "Enter"]);
    let _ = tmux.wait_for("count(");

    tmux.keys(&["g"]);
    let s = tmux.wait_for("seq 0");
    assert!(s.contains("session_start"), "{s}");

    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux
        .run(&["display-message", "-p", "-t", "replay", "#{pane_dead}"])
        .trim()
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "replay did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let var = |name: &str| {
        tmux.run(&[
            "display-message",
            "-p",
            "-t",
            "replay",
            &format!("#{{{name}}}"),
        ])
        .trim()
        .to_string()
    };
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    assert_eq!(code.trim(), "0", "replay exits 0");
    assert_ne!(var("alternate_on"), "1", "the alternate screen is left");
    let s = tmux.screen();
    assert!(
        !s.contains("timeline"),
        "the player is gone from the restored screen:\n{s}"
    );

    // SIGTERM restores the terminal too.
    tmux.run(&["respawn-pane", "-k", "-t", "replay", &cmd]);
    tmux.wait_for("timeline");
    assert_eq!(var("alternate_on"), "1", "the player is up again");
    let pid = var("pane_pid");
    let _ = Command::new("pkill").args(["-TERM", "-P", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while var("pane_dead") != "1" {
        assert!(
            Instant::now() < deadline,
            "replay ignored SIGTERM:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(
        var("alternate_on"),
        "1",
        "SIGTERM left the alternate screen"
    );
    // Exit status 0 means the loop ended and restored the terminal (killed by the
    // signal, the shell would record 143).
    let code = std::fs::read_to_string(&exit_file).unwrap_or_default();
    assert_eq!(code.trim(), "0", "replay handles SIGTERM and exits 0");
}

#[test]
fn follow_appends_a_live_sessions_new_commands() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (client, conn) = rt
        .block_on(tokio_postgres::connect(
            &gw.conninfo("watched"),
            tokio_postgres::NoTls,
        ))
        .unwrap();
    rt.spawn(conn);
    rt.block_on(client.simple_query("SELECT 'first_marker'"))
        .unwrap();
    let id = support::eventually(Duration::from_secs(30), || {
        let rows = query_json(
            gw.archive(),
            "SELECT session_id FROM events WHERE strpos(command, 'first_marker') > 0",
        );
        rows.first()
            .and_then(|r| r["session_id"].as_str().map(str::to_string))
    })
    .expect("the live session reaches the archive within a flush interval");

    let tmux = Tmux::new("follow");
    let cmd = format!(
        "{} replay {id} --follow --archive {}",
        tapline_bin(),
        gw.archive().display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "replay",
        "-x",
        "150",
        "-y",
        "32",
        &cmd,
    ]);
    let s = tmux.wait_for("first_marker");
    assert!(s.contains("following") && s.contains("live"), "{s}");

    rt.block_on(client.simple_query("SELECT 'second_marker'"))
        .unwrap();
    let s = tmux.wait_for("second_marker");
    assert!(
        s.contains("second_marker"),
        "the new command was not appended:\n{s}"
    );
    tmux.keys(&["q"]);
    drop(client);
    assert!(gw.stop());
}

#[test]
fn replay_ends_when_its_terminal_goes_away() {
    let pg = PgServer::start();
    let mut gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "1s",
        ..Default::default()
    });
    let out = Command::new("psql")
        .arg(gw.conninfo("alice"))
        .args(["-X", "-c", "SELECT 'hang-up test'"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(gw.stop());
    let tmux = Tmux::new("hangup");
    for target in ["browser", "player"] {
        let cmd = match target {
            "browser" => format!(
                "{} replay --archive {}",
                tapline_bin(),
                gw.archive().display()
            ),
            _ => {
                let id =
                    query_json(gw.archive(), "SELECT session_id FROM sessions")[0]["session_id"]
                        .as_str()
                        .unwrap()
                        .to_string();
                format!(
                    "{} replay {id} --archive {}",
                    tapline_bin(),
                    gw.archive().display()
                )
            }
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "replay",
            "-x",
            "120",
            "-y",
            "30",
            &cmd,
        ]);
        let s = tmux.wait_for("alice");
        assert!(s.contains("alice"), "{target} is up:\n{s}");
        let pid = tmux
            .run(&["display-message", "-p", "-t", "replay", "#{pane_pid}"])
            .trim()
            .to_string();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        // The window goes away with its terminal, as when an SSH connection drops.
        tmux.run(&["kill-session", "-t", "replay"]);
        let gone = Instant::now() + Duration::from_secs(1);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.split_whitespace().nth(2) == Some("Z") {
                break; // exited; only the zombie waits for tmux to reap it
            }
            assert!(
                Instant::now() < gone,
                "{target}: replay is still running a second after its terminal went away"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
