//! Masking speed, in one run:
//!
//! 1. In process, one core: DataRows rendered for the record as the backend pump
//!    does, with the masking rules of a typical deployment (a column rule read with
//!    the statement's lineage, and every built-in detector, boundary-free ones
//!    included) and with none. Reports rows and values per second; then recorded
//!    commands scrubbed and not.
//! 2. End to end: a large result read with tokio-postgres (binary) and psql (text)
//!    straight from PostgreSQL, through a gateway without masking rules, and through
//!    one with them, alternated in rounds. Reports rows per second and the ratios.
//!
//! Run: cargo bench --bench masking   (ROWS=200000 ROUNDS=3 by default)

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::BytesMut;
use std::time::Instant;
use support::env_num;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use tapline_recorder::policy::mask::column_pattern::ColumnPattern;
use tapline_recorder::policy::mask::detectors::Detector;
use tapline_recorder::policy::mask::rules::{MaskRule, MaskRules};
use tapline_recorder::policy::mask::strategy::Strategy;
use tapline_recorder::policy::sql::lexer::Settings;
use tapline_recorder::protocol::postgres::encoding::UTF8;
use tapline_recorder::protocol::postgres::masking::catalog::Catalog;
use tapline_recorder::protocol::postgres::masking::statement_columns::StatementText;
use tapline_recorder::protocol::postgres::masking::{PgMasking, ResultMasking};
use tapline_recorder::protocol::postgres::row::{Column, render_data_row};

const RULES: &str = r#"
[[mask]]
name = "cards"
columns = ["card"]
strategy = "partial"
keep = 4

[[mask]]
name = "pii"
detectors = ["credit_card", "email", "us_ssn", "iban", "phone", "ipv4", "ipv6", "jwt", "aws_access_key_id", "azure_storage_key", "azure_sas_token", "azure_connection_string", "pem_private_key"]
strategy = "redact"
"#;

fn rules() -> MaskRules {
    let detectors = Detector::BUILT_IN
        .iter()
        .map(|d| Detector::parse(d).expect("a built-in detector"))
        .collect();
    MaskRules::new(
        vec![
            MaskRule {
                name: "cards".into(),
                columns: vec![ColumnPattern::parse("card").expect("a pattern")],
                detectors: Vec::new(),
                strategy: Strategy::Partial { keep: 4 },
                connections: Vec::new(),
                groups: Vec::new(),
                exempt_groups: Vec::new(),
                record_raw: false,
                scrub_commands: true,
            },
            MaskRule {
                name: "pii".into(),
                columns: Vec::new(),
                detectors,
                strategy: Strategy::Redact,
                connections: Vec::new(),
                groups: Vec::new(),
                exempt_groups: Vec::new(),
                record_raw: false,
                scrub_commands: true,
            },
        ],
        [7; 32],
    )
}

/// Text DataRows like a customer listing: one in ten carries an email.
fn rows(n: usize) -> (Vec<Column>, Vec<BytesMut>) {
    let names = ["id", "name", "email", "card", "city", "note"];
    let cols = names
        .iter()
        .map(|n| Column {
            name: n.to_string(),
            table_oid: 0,
            column_attr: 0,
            type_oid: 25,
            format: 0,
        })
        .collect();
    let out = (0..n)
        .map(|i| {
            let email = if i % 10 == 0 {
                format!("user{i}@example.com")
            } else {
                format!("user {i}")
            };
            let values = [
                i.to_string(),
                format!("Customer {i}"),
                email,
                "4111111111111111".to_string(),
                "Lisbon".to_string(),
                format!("order {i} shipped on time, rated {}", i % 5),
            ];
            let mut body = BytesMut::new();
            body.extend_from_slice(&(values.len() as i16).to_be_bytes());
            for v in &values {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v.as_bytes());
            }
            let mut raw = BytesMut::new();
            raw.extend_from_slice(b"D");
            raw.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
            raw.extend_from_slice(&body);
            raw
        })
        .collect();
    (cols, out)
}

fn in_process(n: usize) {
    let (cols, rows) = rows(n);
    let rules = rules();
    let masked = PgMasking::new(rules.for_session("pg", &[]), Catalog::default());
    let plain = PgMasking::new(
        MaskRules::default().for_session("pg", &[]),
        Catalog::default(),
    );
    let run = |m: &PgMasking| {
        // The statement is read for lineage once per result, as the backend pump does.
        let mut rm = ResultMasking::for_statement(StatementText::new(
            "SELECT id, name, email, card, city, note FROM customers",
            Settings::default(),
        ));
        let start = Instant::now();
        let mut changed = 0;
        let mut text = String::new();
        for raw in &rows {
            // What the backend pump does with every row anyway: render it for the
            // event's text; masking comes on top.
            if m.is_active() {
                let out = m
                    .data_row(&mut rm, Some(&cols), raw, UTF8)
                    .expect("a valid row");
                let recorded = out.for_record().unwrap_or(raw);
                render_data_row(&recorded[5..], Some(&cols), UTF8, &mut text).expect("a valid row");
                changed += out.client.is_some() as usize;
            } else {
                render_data_row(&raw[5..], Some(&cols), UTF8, &mut text).expect("a valid row");
            }
            text.clear();
        }
        (start.elapsed().as_secs_f64(), changed)
    };
    let (t_plain, _) = run(&plain);
    let (t_masked, changed) = run(&masked);
    // Scrubbing what clients send, for the archive: INSERTs with a card literal.
    let commands: Vec<String> = (0..n / 4)
        .map(|i| {
            format!(
                "INSERT INTO customers VALUES ({i}, 'Customer {i}', 'user{i}@example.com', '4111111111111111', 'Lisbon', 'note {i}')"
            )
        })
        .collect();
    let scrub = |m: &PgMasking| {
        let start = Instant::now();
        for c in &commands {
            let mut draft = tapline_store::EventDraft::new(
                tapline_store::Direction::Client,
                tapline_store::Kind::Query,
            )
            .command(c.clone());
            m.scrub_client_event(&mut draft, UTF8);
            std::hint::black_box(&draft);
        }
        start.elapsed().as_secs_f64()
    };
    let s_off = scrub(&plain);
    let s_on = scrub(&masked);
    println!(
        "commands recorded, one core: {} INSERTs with a card and an email; scrubbing off {:.0}/s, on {:.0}/s (on/off = {:.3})",
        commands.len(),
        commands.len() as f64 / s_off.max(1e-9),
        commands.len() as f64 / s_on,
        s_off / s_on
    );
    let values = (n * cols.len()) as f64;
    println!(
        "in process, one core: {n} rows x {} text values; every row rewritten ({changed}); \
         masking {:.0} rows/s = {:.2} M values/s ({:.0} ns/value); without rules {:.0} rows/s",
        cols.len(),
        n as f64 / t_masked,
        values / t_masked / 1e6,
        t_masked * 1e9 / values,
        n as f64 / t_plain.max(1e-9),
    );
}

async fn read_all(conninfo: &str, sql: &str) -> (usize, f64) {
    let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let start = Instant::now();
    let rows = client.query(sql, &[]).await.expect("the query");
    (rows.len(), start.elapsed().as_secs_f64())
}

fn psql_all(conninfo: &str, sql: &str) -> f64 {
    let start = Instant::now();
    let out = std::process::Command::new("psql")
        .arg(conninfo)
        .args(["-X", "-A", "-t", "-o", "/dev/null", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn main() {
    let n = env_num("ROWS", 200_000) as usize;
    let rounds = env_num("ROUNDS", 3);
    in_process(n);

    let pg = PgServer::start();
    pg.psql_direct(
        "postgres",
        &format!(
            "CREATE TABLE customers AS SELECT i AS id, 'Customer ' || i AS name, \
             CASE WHEN i % 10 = 0 THEN 'user' || i || '@example.com' ELSE 'user ' || i END AS email, \
             '4111111111111111'::text AS card, 'Lisbon'::text AS city, \
             'order ' || i || ' shipped on time, rated ' || (i % 5) AS note \
             FROM generate_series(1, {n}) i"
        ),
    );
    let connection = format!(
        "[[connections]]\nname = \"crm\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    let opts = || GatewayOpts {
        upstream: pg.upstream_url("postgres"),
        flush_interval: "5s",
        ..Default::default()
    };
    let plain = GatewayProc::start_with_config(opts(), &connection);
    let masked = GatewayProc::start_with_config(opts(), &format!("{RULES}\n{connection}"));
    let sql = "SELECT id, name, email, card, city, note FROM customers";
    let direct = pg.direct_conninfo("postgres");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut sums = [[0.0f64; 3]; 2];
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, conninfo) in [
            direct.clone(),
            plain.conninfo("bench"),
            masked.conninfo("bench"),
        ]
        .iter()
        .enumerate()
        {
            let (count, secs) = rt.block_on(read_all(conninfo, sql));
            assert_eq!(count, n);
            let text_secs = psql_all(conninfo, sql);
            sums[0][i] += secs;
            sums[1][i] += text_secs;
            line.push_str(&format!(
                " [{}] binary {:.0} rows/s, text {:.0} rows/s;",
                ["direct", "tapline", "tapline+masking"][i],
                n as f64 / secs,
                n as f64 / text_secs
            ));
        }
        println!("{line}");
    }
    for (f, name) in ["binary (tokio-postgres)", "text (psql)"]
        .iter()
        .enumerate()
    {
        let rate = |i: usize| n as f64 * rounds as f64 / sums[f][i];
        println!(
            "{name}, {n} rows x 6 columns, {rounds} rounds: direct {:.0} rows/s, tapline {:.0} rows/s, \
             tapline+masking {:.0} rows/s; masking/no masking = {:.3}, masking/direct = {:.3}",
            rate(0),
            rate(1),
            rate(2),
            rate(2) / rate(1),
            rate(2) / rate(0)
        );
    }
}
