//! `pgbench -S -c 8` direct to PostgreSQL and through the tapline gateway, alternated
//! in one run, printing TPS for each and the ratio; then the same with TLS on every
//! leg: direct TLS to a PostgreSQL with ssl=on, against TLS to the gateway and TLS
//! (verify-full) from the gateway to that server.
//!
//! Run: cargo bench --bench pgbench_ratio   (ROUNDS=3 SECONDS=10 by default; needs
//! pgbench and openssl)

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use support::env_num;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;
use support::tls::TestCa;

fn pgbench(args: &[&str], conn: &[String]) -> f64 {
    let out = Command::new("pgbench")
        .args(args)
        .args(conn)
        .output()
        .expect("pgbench is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("pgbench prints tps")
}

fn main() {
    let rounds = env_num("ROUNDS", 3);
    let seconds = env_num("SECONDS", 10).to_string();
    let pg = PgServer::start();
    let init = Command::new("pgbench")
        .args(["-i", "-s", "10", "-q"])
        .arg(pg.direct_conninfo("postgres"))
        .output()
        .unwrap();
    assert!(init.status.success());
    let gw = GatewayProc::start(GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "5s",
        extra: Vec::new(),
        ..Default::default()
    });
    // TLS on both legs: a server that takes TLS only, a gateway that requires it.
    let ca = TestCa::new("bench CA");
    let server_cert = ca.issue("pg", "localhost", &["localhost"], &[]);
    let gateway_cert = ca.issue("gateway", "localhost", &["localhost"], &[]);
    let pg_tls = PgServer::start_tls(&server_cert.cert, &server_cert.key);
    let init = Command::new("pgbench")
        .args(["-i", "-s", "10", "-q"])
        .arg(pg_tls.direct_conninfo("postgres"))
        .output()
        .unwrap();
    assert!(init.status.success());
    let gw_tls = GatewayProc::start_with_config(
        GatewayOpts {
            flush_interval: "5s",
            ..Default::default()
        },
        &format!(
            "[[connections]]\nname = \"bench-tls\"\nlisten = \"127.0.0.1:{{port}}\"\n\
             upstream = \"postgres://{}@localhost:{}/postgres\"\nupstream_password_env = \"{}\"\n\
             sslmode = \"verify-full\"\nsslrootcert = \"{}\"\n\
             tls = \"required\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            support::postgres::UPSTREAM_USER,
            pg_tls.port,
            support::gateway::PASSWORD_ENV,
            ca.cert.display(),
            gateway_cert.cert.display(),
            gateway_cert.key.display()
        ),
    );

    let args = ["-S", "-c", "8", "-j", "2", "-n", "-T", seconds.as_str()];
    let direct_conn = vec![pg.direct_conninfo("postgres")];
    let gw_conn = vec![gw.conninfo("bench")];
    let direct_tls_conn = vec![format!(
        "{} sslmode=require",
        pg_tls.direct_conninfo("postgres")
    )];
    let gw_tls_conn = vec![format!(
        "host=127.0.0.1 port={} user=bench dbname=postgres sslmode=require",
        gw_tls.port
    )];
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    let (mut direct_tls, mut through_tls) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let d = pgbench(&args, &direct_conn);
        let g = pgbench(&args, &gw_conn);
        let dt = pgbench(&args, &direct_tls_conn);
        let gt = pgbench(&args, &gw_tls_conn);
        println!(
            "round {round}: direct {d:.0} tps, through tapline {g:.0} tps, ratio {:.3}; \
             TLS: direct {dt:.0} tps, through tapline {gt:.0} tps, ratio {:.3}",
            g / d,
            gt / dt
        );
        direct.push(d);
        through.push(g);
        direct_tls.push(dt);
        through_tls.push(gt);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "pgbench -S -c 8 -j 2 -T {seconds}, {rounds} rounds: direct {:.0} tps, through tapline {:.0} tps, tapline/direct = {:.3}",
        mean(&direct),
        mean(&through),
        mean(&through) / mean(&direct)
    );
    println!(
        "with TLS on every leg: direct {:.0} tps, through tapline {:.0} tps, tapline/direct = {:.3}",
        mean(&direct_tls),
        mean(&through_tls),
        mean(&through_tls) / mean(&direct_tls)
    );
}
