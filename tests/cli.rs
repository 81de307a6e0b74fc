//! The command line without a database: keys, secrets, configuration errors, empty
//! archives and the SQL shell, checked the way a user meets them.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use support::tapline_bin;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(tapline_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn keygen_writes_both_halves_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("gw.key");
    let out = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert!(
        std::fs::read_to_string(dir.path().join("gw.key.pub"))
            .unwrap()
            .contains("PUBLIC KEY")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn configuration_errors_name_the_file_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tapline.toml");
    std::fs::write(
        &cfg,
        "[[connections]]\nname = \"prod\"\nlisten = \"0.0.0.0:6432\"\nupstream = \"postgres://app@db:5432/app\"\n",
    )
    .unwrap();
    let out = run(&[
        "gateway",
        "--config",
        cfg.to_str().unwrap(),
        "--archive",
        dir.path().join("a").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("tapline.toml"), "{err}");
    assert!(err.contains("connections[0].users"), "{err}");
    assert!(err.contains("loopback"), "{err}");

    std::fs::write(&cfg, "[gateway]\nflush_interval = \"5s\"\nbogus = 1\n").unwrap();
    let out = run(&["gateway", "--config", cfg.to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("line 3") && err.contains("bogus"), "{err}");

    let out = run(&[
        "gateway",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "postgres://app:pw@db/app",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--upstream"), "{}", stderr(&out));
    assert!(stderr(&out).contains("password"), "{}", stderr(&out));
}

#[test]
fn a_missing_archive_is_explained_and_an_empty_one_queries_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = run(&["sessions", "--archive", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no archive folder"),
        "{}",
        stderr(&out)
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(&[
        "query",
        "SELECT count(*) AS n FROM commands",
        "--archive",
        empty.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n0\n");
    let out = run(&[
        "sessions",
        "--archive",
        empty.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("session_id,start_ts,end_ts,user,"),
        "an empty listing still has its header: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(&["verify", "--archive", empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 session(s) checked"));
}

#[test]
fn the_sql_shell_reads_statements_until_quit() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let mut child = Command::new(tapline_bin())
        .args(["query", "--archive", dir.path().to_str().unwrap()])
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 41 +\n 1 AS answer;\nSELEC oops;\n\\q\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout.contains("| 42     |"), "{stdout}");
    assert!(
        stderr(&out).contains("error"),
        "bad SQL is reported: {}",
        stderr(&out)
    );
    assert!(home.join(".tapline_history").exists());
}
