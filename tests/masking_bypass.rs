//! A caller with a valid login, told to get masked values out, against a real
//! PostgreSQL through the gateway: computed columns of a masked column (every
//! transform an agent would try), results without a Describe, values glued to other
//! text or digits, and notifications. Each case checks what the client got and greps
//! every decompressed archive value for the raw forms.
//!
//! A leak found later becomes a case here first.

mod support;

use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use support::raw_client::{RawClient, sqlstate_of};

const CARD: &str = "4111111111111111";
const SSN: &str = "123-45-6789";

fn start(pg: &PgServer) -> GatewayProc {
    pg.psql_direct("postgres", "CREATE DATABASE shop");
    pg.psql_direct(
        "shop",
        &format!(
            "CREATE TABLE customers (id int, name text, card text, ssn text, acct int);\
             INSERT INTO customers VALUES (1, 'ann', '{CARD}', '{SSN}', 123456789),\
             (2, 'bob', '5500000000000004', '234-56-7890', 987654321);"
        ),
    );
    let config = format!(
        "[[mask]]\nname = \"cards\"\ncolumns = [\"customers.card\"]\nstrategy = \"partial\"\nkeep = 4\n\n\
         [[mask]]\nname = \"accounts\"\ncolumns = [\"customers.acct\"]\nstrategy = \"null\"\n\n\
         [[mask]]\nname = \"pii\"\ndetectors = [\"credit_card\", \"us_ssn\", \"email\"]\nstrategy = \"redact\"\n\n\
         [[connections]]\nname = \"shop\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\n"
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("shop"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

/// The first column of every row `sql` returns, as text.
async fn column(c: &tokio_postgres::Client, sql: &str) -> Vec<Option<String>> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("`{sql}`: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect()
}

/// Every form of the card numbers and SSNs the statements below could produce.
fn raw_forms() -> Vec<String> {
    let mut out = Vec::new();
    for v in [
        CARD,
        "5500000000000004",
        SSN,
        "234-56-7890",
        "123456789",
        "987654321",
    ] {
        out.push(v.to_string());
        out.push(v.chars().rev().collect());
        out.push(v.bytes().map(|b| format!("{b:02x}")).collect());
        out.push(v.replace('-', ""));
    }
    // translate(card, '145', 'xyz') of both cards.
    for v in [CARD, "5500000000000004"] {
        out.push(
            v.chars()
                .map(|c| match c {
                    '1' => 'x',
                    '4' => 'y',
                    '5' => 'z',
                    c => c,
                })
                .collect(),
        );
    }
    out.push(CARD[..12].to_string());
    // base64 of the card number, as encode(card::bytea, 'base64') gives it.
    out.push("NDExMTExMTExMTExMTExMQ==".to_string());
    out.retain(|s| s.len() >= 9);
    out
}

fn assert_no_raw(what: &str, value: &str) {
    for raw in raw_forms() {
        assert!(
            !value.contains(&raw),
            "{what}: `{raw}` came back in {value:?}"
        );
    }
}

/// No raw form of a masked value is anywhere in the decompressed archive (commands
/// and results alike), and the card rule fired by lineage; returns the events'
/// `masked` entries, as JSON.
fn assert_archive_clean(gw: &GatewayProc) -> String {
    let archive = support::parquet_dump::decompressed_archive(gw.archive());
    let text = String::from_utf8_lossy(&archive);
    for raw in raw_forms() {
        if let Some(at) = text.find(&raw) {
            let from = text.floor_char_boundary(at.saturating_sub(300));
            let to = text.ceil_char_boundary(at + raw.len() + 100);
            panic!("`{raw}` is in the archive: …{}…", &text[from..to]);
        }
    }
    let rows = support::query_json(
        gw.archive(),
        "SELECT masked FROM events WHERE cardinality(masked) > 0",
    );
    let masked = serde_json::to_string(&rows).unwrap();
    assert!(masked.contains("cards/lineage:customers.card"), "{masked}");
    masked
}

#[test]
fn values_computed_from_a_masked_column_stay_masked() {
    let pg = PgServer::start();
    let mut gw = start(&pg);
    let rt = support::runtime();
    rt.block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        // The column itself keeps its last four, as the rule says.
        assert_eq!(
            column(&c, "SELECT card FROM customers WHERE id = 1").await,
            [Some("************1111".to_string())]
        );
        for sql in [
            "SELECT reverse(card) FROM customers",
            "SELECT card || 'x' FROM customers",
            "SELECT '9' || card FROM customers",
            "SELECT encode(card::bytea, 'hex') FROM customers",
            "SELECT encode(convert_to(card, 'UTF8'), 'base64') FROM customers",
            "SELECT translate(card, '145', 'xyz') FROM customers",
            "SELECT substr(card, 1, 12) FROM customers",
            "SELECT string_agg(card, '') FROM customers",
            "SELECT string_agg(reverse(card), '|') FROM customers",
            "SELECT x FROM (SELECT reverse(card) AS x FROM customers) s",
            "WITH d AS (SELECT card AS k FROM customers) SELECT lower(k) FROM d",
            "SELECT (SELECT reverse(card) FROM customers LIMIT 1)",
            "SELECT row_to_json(c)::text FROM customers c",
            "SELECT c::text FROM customers c",
            "SELECT row_to_json(c.*)::text FROM customers c",
            "SELECT json_agg(c.*)::text FROM customers c",
            "SELECT to_jsonb(customers.*)::text FROM customers",
            "SELECT reverse(card) FROM customers UNION ALL SELECT 'x'",
            "SELECT array_to_string(array_agg(reverse(card)), ',') FROM customers",
            "SELECT overlay(card placing 'x' from 13) FROM customers",
            "SELECT acct::text FROM customers",
            "SELECT (acct + 0)::text FROM customers",
            "SELECT reverse(acct::text) FROM customers",
            "SELECT replace(ssn, '-', '') FROM customers",
        ] {
            for v in column(&c, sql).await.into_iter().flatten() {
                assert_no_raw(sql, &v);
            }
        }
        // COPY of a query: no RowDescription, the same lineage.
        for sql in [
            "COPY (SELECT reverse(card), acct + 1 FROM customers) TO STDOUT",
            "COPY (SELECT id, card || 'x' FROM customers) TO STDOUT (FORMAT csv)",
            "COPY (SELECT x FROM (SELECT encode(card::bytea, 'hex') AS x FROM customers) s) TO STDOUT",
            // A `*` the gateway cannot size before a computed column: every field after it.
            "COPY (SELECT n.*, reverse(c.card) FROM pg_namespace n, customers c) TO STDOUT",
        ] {
            assert_no_raw(sql, &copy_text(&c, sql).await);
        }
        // Parse/Bind/Execute through tokio-postgres (it describes).
        let rows = c
            .query(
                "SELECT reverse(card), acct FROM customers WHERE id = $1",
                &[&1i32],
            )
            .await
            .unwrap();
        assert_eq!(
            rows[0].get::<_, Option<String>>(0).as_deref(),
            Some("[redacted]")
        );
        assert_eq!(rows[0].get::<_, Option<i32>>(1), None, "null strategy");
    });
    assert!(gw.stop(), "{}", gw.log());
    let masked = assert_archive_clean(&gw);
    assert!(
        masked.contains("accounts/lineage:customers.acct"),
        "{masked}"
    );
}

#[test]
fn columns_are_masked_when_the_client_never_describes() {
    let pg = PgServer::start();
    let gw = start(&pg);
    let mut c = RawClient::connect(gw.port);
    let reply = c.extended_without_describe(
        "SELECT acct, card, name FROM customers WHERE id = $1",
        &["1"],
    );
    assert!(sqlstate_of(&reply).is_none(), "{reply:?}");
    assert!(
        !reply.iter().any(|(t, _)| *t == b'T' || *t == b'n'),
        "the gateway's own Describe is not answered to the client: {reply:?}"
    );
    let rows = RawClient::rows(&reply);
    assert_eq!(
        rows,
        [vec![
            None,
            Some("************1111".to_string()),
            Some("ann".to_string())
        ]]
    );
    let reply =
        c.extended_without_describe("SELECT reverse(card) FROM customers WHERE id = $1", &["2"]);
    assert_eq!(
        RawClient::rows(&reply),
        [vec![Some("[redacted]".to_string())]]
    );
    // The session goes on, in step.
    let reply = c.pipelined(&[b"SELECT name FROM customers WHERE id = 2"]);
    assert_eq!(RawClient::rows(&reply[0]), [vec![Some("bob".to_string())]]);
}

#[test]
fn a_notification_cannot_carry_a_masked_column() {
    let pg = PgServer::start();
    let gw = start(&pg);
    let rt = support::runtime();
    rt.block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        for sql in [
            "SELECT pg_notify('leak', reverse(card)) FROM customers",
            "SELECT 1 FROM customers WHERE pg_notify('leak', card::text) IS NULL",
            "SELECT pg_notify('leak', c::text) FROM customers c",
            "SELECT pg_notify('leak', row_to_json(c.*)::text) FROM customers c",
        ] {
            let e = c.simple_query(sql).await.expect_err(sql);
            let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
            assert_eq!(db.code().code(), "42501", "{sql}");
            assert!(
                db.message().contains("masked column customers."),
                "{}",
                db.message()
            );
        }
        // Notifications of other values still work.
        c.simple_query("SELECT pg_notify('ok', name) FROM customers")
            .await
            .unwrap();
    });
}

#[test]
fn card_numbers_in_a_long_copy_are_scrubbed_wherever_the_chunks_fall() {
    let pg = PgServer::start();
    let mut gw = start(&pg);
    pg.psql_direct(
        "shop",
        "CREATE TABLE imports (id int, card text, note text)",
    );
    // Rows of uneven length, so psql's buffers and the gateway's 256 KiB chunks
    // cut through card numbers somewhere.
    let mut data = String::new();
    for i in 0..12_000 {
        data.push_str(&format!("{i}\t{CARD}\t{}\n", "n".repeat(i % 37)));
    }
    let mut copy = std::process::Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=agent dbname=shop",
            gw.port
        ))
        .args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "COPY imports FROM STDIN",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        copy.stdin
            .take()
            .unwrap()
            .write_all(data.as_bytes())
            .unwrap();
    }
    assert!(copy.wait().unwrap().success());
    assert_eq!(
        pg.psql_direct(
            "shop",
            "SELECT count(*) FROM imports WHERE card = '4111111111111111'"
        ),
        "12000"
    );
    assert!(gw.stop(), "{}", gw.log());
    let archive = support::parquet_dump::decompressed_archive(gw.archive());
    // No run of 13 or more of the card's digits survives anywhere.
    let digits = CARD.as_bytes();
    for w in 13..=digits.len() {
        for start in 0..=digits.len() - w {
            let piece = &digits[start..start + w];
            assert!(
                !archive.windows(w).any(|x| x == piece),
                "{} digits of the card are in the archive",
                w
            );
        }
    }
}

/// The rows of a COPY … TO STDOUT, as text.
async fn copy_text(c: &tokio_postgres::Client, sql: &str) -> String {
    use futures::StreamExt;
    let stream = c
        .copy_out(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let chunks: Vec<_> = stream.collect().await;
    let mut data = Vec::new();
    for chunk in chunks {
        data.extend_from_slice(&chunk.expect("a COPY row"));
    }
    String::from_utf8_lossy(&data).into_owned()
}

#[test]
fn views_and_filled_tables_carry_the_rules_of_what_they_are_made_from() {
    let pg = PgServer::start();
    let mut gw = start(&pg);
    // Made before the session, by someone else: the gateway reads their definitions.
    pg.psql_direct(
        "shop",
        "CREATE VIEW cv AS SELECT id, reverse(card) AS r, acct + 0 AS a FROM customers;\
         CREATE VIEW cv2 AS SELECT id, upper(r) AS u FROM cv;\
         CREATE MATERIALIZED VIEW mv AS SELECT id, encode(card::bytea, 'hex') AS h FROM customers;\
         CREATE VIEW plain AS SELECT id, name FROM customers;",
    );
    let rt = support::runtime();
    rt.block_on(async {
        let c = support::login(gw.port, "agent", "shop").await;
        // Made in the session, then read back.
        c.batch_execute(
            "CREATE VIEW sv AS SELECT id, reverse(card) AS zz FROM customers;\
             CREATE TABLE t2 AS SELECT id, substr(card, 1, 12) AS p FROM customers;\
             CREATE TABLE notes (id int, body text);\
             INSERT INTO notes (id, body) SELECT id, translate(card, '145', 'xyz') FROM customers;\
             CREATE TABLE pos (body text); INSERT INTO pos SELECT reverse(card) FROM customers;\
             SELECT reverse(card) AS w INTO t3 FROM customers;",
        )
        .await
        .unwrap();
        for sql in [
            "SELECT r FROM cv",
            "SELECT * FROM cv",
            "SELECT a::text FROM cv",
            "SELECT r AS renamed FROM cv",
            "SELECT x.r FROM cv x",
            "SELECT u FROM cv2",
            "SELECT lower(u) FROM cv2",
            "SELECT h FROM mv",
            "SELECT row_to_json(v)::text FROM cv v",
            "SELECT zz FROM sv",
            "SELECT * FROM sv",
            "SELECT p FROM t2",
            "SELECT body FROM notes",
            "SELECT * FROM pos",
            "SELECT w FROM t3",
        ] {
            let values = column(&c, sql).await;
            assert!(!values.is_empty(), "{sql}: no rows");
            for v in values.into_iter().flatten() {
                assert_no_raw(sql, &v);
            }
        }
        // A prepared statement's result has no text to read: the view's column is
        // found by the OID the RowDescription names.
        let rows = c
            .simple_query("PREPARE pr AS SELECT r FROM cv; EXECUTE pr")
            .await
            .unwrap();
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                assert_no_raw("EXECUTE pr", r.get(0).unwrap_or_default());
            }
        }
        let rows = c
            .query("SELECT r, id FROM cv ORDER BY id", &[])
            .await
            .unwrap();
        assert_eq!(
            rows[0].get::<_, Option<String>>(0).as_deref(),
            Some("[redacted]")
        );
        // What the views compute from other columns is left alone.
        assert_eq!(rows[0].get::<_, Option<i32>>(1), Some(1));
        assert_eq!(
            column(&c, "SELECT name FROM plain WHERE id = 1").await,
            [Some("ann".to_string())]
        );
        assert_eq!(
            column(&c, "SELECT id::text FROM cv2 WHERE id = 2").await,
            [Some("2".to_string())]
        );
        for sql in [
            "COPY (SELECT * FROM mv) TO STDOUT",
            "COPY t2 TO STDOUT",
            "COPY pos TO STDOUT (FORMAT csv)",
            "COPY (SELECT * FROM cv) TO STDOUT",
            "COPY (SELECT u FROM cv2) TO STDOUT",
            "COPY (SELECT * FROM t2) TO STDOUT",
            "COPY (SELECT * FROM pos) TO STDOUT",
            "COPY (SELECT * FROM sv) TO STDOUT (FORMAT csv, HEADER)",
        ] {
            let text = copy_text(&c, sql).await;
            assert!(!text.is_empty(), "{sql}: no rows");
            assert_no_raw(sql, &text);
        }
        // Made where the gateway cannot read the definition (SQL text run by a DO
        // block, a function body): every column without a rule of its own is masked.
        c.batch_execute(
            "DO $$ BEGIN EXECUTE 'CREATE VIEW dv AS SELECT id, reverse(card) AS r FROM customers'; END $$",
        )
        .await
        .unwrap();
        for sql in ["SELECT r FROM dv", "SELECT * FROM dv", "SELECT upper(r) FROM dv"] {
            let values = column(&c, sql).await;
            assert!(!values.is_empty(), "{sql}: no rows");
            for v in values.into_iter().flatten() {
                assert_no_raw(sql, &v);
            }
        }
        let e = c
            .simple_query("SELECT pg_notify('leak', r) FROM cv")
            .await
            .expect_err("a view's masked column in a notification");
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    });
    assert!(gw.stop(), "{}", gw.log());
    assert_archive_clean(&gw);
}
