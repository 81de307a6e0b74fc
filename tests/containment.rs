//! No client input can take the gateway down or end another session: while one session
//! keeps querying, another sends a 40 000-term expression, a 60 000-condition WHERE, a
//! 60 MB literal, malformed bytes, and values in fullwidth and Arabic-Indic digits (in
//! a result, a notice, a COPY row and a NOTIFY). The healthy session never notices,
//! every hostile statement gets a PostgreSQL error or its answer, and everything is
//! recorded.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::PgServer;
use support::query_json;

fn start(pg: &PgServer) -> GatewayProc {
    let config = format!(
        r#"
[policy]
unparseable_sql = "closed"

[[deny]]
name = "no-destruction"
kinds = ["drop", "truncate"]
message = "not through tapline"

[[mask]]
name = "ids"
detectors = ["us_ssn", "credit_card"]
strategy = "redact"

[[connections]]
name = "pg"
listen = "127.0.0.1:{{port}}"
upstream = "{{upstream}}"
upstream_password_env = "{PASSWORD_ENV}"
"#
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("postgres"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

async fn connect(gw: &GatewayProc, user: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&gw.conninfo(user), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[test]
fn hostile_statements_and_values_end_no_other_session_and_never_the_gateway() {
    let pg = PgServer::start();
    pg.psql_direct(
        "postgres",
        "CREATE TABLE ids (id int, v text); \
         INSERT INTO ids VALUES (1, 'ssn １２３-４５-６７８９'), (2, 'ssn ٣٢١-٤٥-٦٧٨٩'), \
         (3, 'card ４１１１１１１１１１１１１１１１'); \
         CREATE FUNCTION note(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE '%', t; END$$",
    );
    let mut gw = start(&pg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let healthy = {
        let (stop, served) = (stop.clone(), served.clone());
        let conninfo = gw.conninfo("healthy");
        rt.spawn(async move {
            let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) {
                let rows = client.simple_query("SELECT 'still serving'").await;
                assert!(rows.is_ok(), "the healthy session failed: {rows:?}");
                served.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    rt.block_on(async {
        let attacker = connect(&gw, "mallory").await;
        // A 40 000-term sum: within the parse budget, checked on a deep stack, then
        // PostgreSQL itself judges it.
        let sum = format!("SELECT 1{}", " + 1".repeat(40_000));
        let direct_answer = {
            let (c, conn) =
                tokio_postgres::connect(&pg.direct_conninfo("postgres"), tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            c.simple_query(&sum)
                .await
                .map(|_| ())
                .map_err(|e| e.as_db_error().map(|d| d.code().code().to_string()))
        };
        let through = attacker
            .simple_query(&sum)
            .await
            .map(|_| ())
            .map_err(|e| e.as_db_error().map(|d| d.code().code().to_string()));
        assert_eq!(
            through, direct_answer,
            "the same answer as PostgreSQL gives"
        );

        // 60 000 conditions: over the budget, refused as too complex (fail closed).
        let ands = format!("SELECT 1 WHERE {}true", "1 = 1 AND ".repeat(60_000));
        let err = attacker.simple_query(&ands).await.unwrap_err();
        let db = err.as_db_error().expect("a PostgreSQL error");
        assert_eq!(db.code().code(), "54001");
        assert!(
            db.message().contains("too complex for the policy check"),
            "{}",
            db.message()
        );

        // A 60 MB literal.
        let big = format!("SELECT length('{}')", "x".repeat(60 << 20));
        let rows = attacker.simple_query(&big).await.unwrap();
        let n = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(n.as_deref(), Some("62914560"));

        // Unicode digits in results, a notice, a COPY row and a NOTIFY.
        let rows = attacker
            .simple_query("SELECT v FROM ids ORDER BY id")
            .await
            .unwrap();
        let values: Vec<String> = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        assert_eq!(values.len(), 3);
        for v in &values {
            assert!(v.contains("[redacted]"), "masked in its own script: {v}");
        }
        let notice = std::process::Command::new("psql")
            .arg(gw.conninfo("mallory"))
            .args(["-X", "-c", "SELECT note('ssn １２３-４５-６７８９')"])
            .output()
            .unwrap();
        let notice = String::from_utf8_lossy(&notice.stderr);
        assert!(notice.contains("NOTICE:  ssn [redacted]"), "{notice}");
        use futures::StreamExt;
        let copied: Vec<bytes::Bytes> = attacker
            .copy_out("COPY ids TO STDOUT")
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let copied = String::from_utf8(copied.concat()).unwrap();
        assert_eq!(copied.matches("[redacted]").count(), 3, "{copied}");

        let (listener, mut conn) =
            tokio_postgres::connect(&gw.conninfo("listener"), tokio_postgres::NoTls)
                .await
                .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        tokio::spawn(stream.for_each(move |m| {
            if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
                let _ = tx.send(n.payload().to_string());
            }
            futures::future::ready(())
        }));
        listener.batch_execute("LISTEN digits").await.unwrap();
        attacker
            .batch_execute("NOTIFY digits, 'ssn ٣٢١-٤٥-٦٧٨٩'")
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("the listener got the notification")
            .unwrap();
        assert_eq!(got, "ssn [redacted]");
        listener
            .simple_query("SELECT 1")
            .await
            .expect("the listener is alive");
        attacker
            .simple_query("SELECT 1")
            .await
            .expect("the attacker's session went on");
    });

    // Malformed bytes: only that connection ends, with a FATAL.
    let port = gw.port;
    let reply = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(&support::startup_packet("mallory", "postgres"))
            .unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.write_all(b"P\0\0\0\x09\xff\xff\xff\xff\xff").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .join()
    .unwrap();
    assert!(
        String::from_utf8_lossy(&reply).contains("08P01"),
        "{reply:?}"
    );

    let before = served.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        served.load(Ordering::Relaxed) > before,
        "the healthy session kept being served"
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(healthy).unwrap();
    assert!(
        support::wait_for_port(gw.port, Duration::from_secs(1)),
        "the gateway is up"
    );
    assert!(gw.stop(), "{}", gw.log());
    assert!(!gw.log().contains("overflowed its stack"), "{}", gw.log());

    let rows = query_json(
        gw.archive(),
        "SELECT status, sqlstate, substr(command, 1, 12) AS c FROM commands WHERE \"user\" = 'mallory' ORDER BY seq",
    );
    let text = serde_json::to_string(&rows).unwrap();
    assert!(
        text.contains("\"sqlstate\":\"54001\""),
        "the refusal is recorded: {text}"
    );
    assert!(
        text.contains("SELECT 1 + 1"),
        "the long sum is recorded: {text}"
    );
    let ends = query_json(
        gw.archive(),
        "SELECT \"user\", end_reason FROM sessions ORDER BY start_ts",
    );
    for e in &ends {
        let reason = e["end_reason"].as_str().unwrap_or_default();
        assert!(
            !reason.contains("１２３"),
            "no raw value in an end reason: {ends:?}"
        );
        assert!(!reason.contains("panicked"), "{ends:?}");
    }
}
