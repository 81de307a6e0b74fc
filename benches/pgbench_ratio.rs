//! `pgbench -S -c 8` direct to PostgreSQL and through the tapline gateway, alternated
//! in one run, printing TPS for each and the ratio.
//!
//! Run: cargo bench --bench pgbench_ratio   (ROUNDS=3 SECONDS=10 by default)

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use support::env_num;
use support::gateway::{GatewayOpts, GatewayProc};
use support::postgres::PgServer;

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
    let args = ["-S", "-c", "8", "-j", "2", "-n", "-T", seconds.as_str()];
    let direct_conn = vec![pg.direct_conninfo("postgres")];
    let gw_conn = vec![gw.conninfo("bench")];
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let d = pgbench(&args, &direct_conn);
        let g = pgbench(&args, &gw_conn);
        println!(
            "round {round}: direct {d:.0} tps, through tapline {g:.0} tps, ratio {:.3}",
            g / d
        );
        direct.push(d);
        through.push(g);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "pgbench -S -c 8 -j 2 -T {seconds}, {rounds} rounds: direct {:.0} tps, through tapline {:.0} tps, tapline/direct = {:.3}",
        mean(&direct),
        mean(&through),
        mean(&through) / mean(&direct)
    );
}
