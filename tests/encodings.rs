//! Every client encoding works through the gateway: LATIN1, LATIN9, WIN1252 and EUC_JP
//! sessions of a UTF8 database, and a SQL_ASCII database, with non-ASCII text in
//! queries, results, errors, notices and COPY. psql and tokio-postgres get exactly the
//! bytes a direct connection gets (but for the masked card and SSN numbers), the
//! recorded `command` and `text` read as correct UTF-8, and a masked value is masked in
//! every encoding.

mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::postgres::{PgServer, UPSTREAM_PASSWORD, UPSTREAM_USER};
use support::query_json;

const CARD: &str = "4111111111111111";
const SSN: &str = "123-45-6789";

/// One encoding under test: its name, how its texts are written, and what rows and
/// literal it can hold.
struct Case {
    encoding: &'static str,
    ids: &'static str,
    literal: &'static str,
    /// How to write a UTF-8 string in this encoding.
    encode: fn(&str) -> Vec<u8>,
}

fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| u8::try_from(c as u32).unwrap()).collect()
}

fn latin9(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0xA4,
            c => u8::try_from(c as u32).unwrap(),
        })
        .collect()
}

fn win1252(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0x80,
            c => u8::try_from(c as u32).unwrap(),
        })
        .collect()
}

fn euc_jp(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in s.chars() {
        match c {
            '日' => out.extend_from_slice(b"\xc6\xfc"),
            '本' => out.extend_from_slice(b"\xcb\xdc"),
            '語' => out.extend_from_slice(b"\xb8\xec"),
            c if c.is_ascii() => out.push(c as u8),
            c => panic!("no EUC-JP bytes for {c} in this test"),
        }
    }
    out
}

const CASES: &[Case] = &[
    Case {
        encoding: "LATIN1",
        ids: "1, 2",
        literal: "ünïcödé",
        encode: latin1,
    },
    Case {
        encoding: "LATIN9",
        ids: "1, 2, 3",
        literal: "prix €",
        encode: latin9,
    },
    Case {
        encoding: "WIN1252",
        ids: "1, 2, 3",
        literal: "€ café",
        encode: win1252,
    },
    Case {
        encoding: "EUC_JP",
        ids: "4, 5",
        literal: "日本語",
        encode: euc_jp,
    },
];

fn seed(pg: &PgServer) {
    pg.psql_direct(
        "postgres",
        &format!(
            "CREATE TABLE people (id int, name text, note text); \
             INSERT INTO people VALUES \
             (1, 'Zoë Café', 'card {CARD} ok'), (2, 'Müller', 'ssn {SSN}'), \
             (3, '€uro', 'x'), (4, '日本', 'card 5500005555555559'), (5, 'plain', 'ssn {SSN}')"
        ),
    );
}

fn start(pg: &PgServer) -> GatewayProc {
    let config = format!(
        r#"
[[mask]]
name = "secrets"
detectors = ["credit_card", "us_ssn"]
strategy = "redact"

[[connections]]
name = "enc"
listen = "127.0.0.1:{{port}}"
upstream = "postgres://{UPSTREAM_USER}@127.0.0.1:{port}"
upstream_password_env = "{PASSWORD_ENV}"
"#,
        port = pg.port
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: String::new(),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

/// psql with the client encoding set, one `-c` per (already encoded) statement.
fn psql(conninfo: &str, encoding: &str, statements: &[Vec<u8>]) -> Output {
    let mut cmd = Command::new("psql");
    cmd.arg(conninfo)
        .args(["-X", "-A"])
        .env("PGCLIENTENCODING", encoding)
        .env("PGPASSWORD", UPSTREAM_PASSWORD);
    for s in statements {
        cmd.arg("-c").arg(OsStr::from_bytes(s));
    }
    cmd.output().expect("run psql")
}

fn direct(pg: &PgServer, db: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={UPSTREAM_USER} dbname={db}",
        pg.port
    )
}

fn through(gw: &GatewayProc, db: &str, user: &str) -> String {
    format!("host=127.0.0.1 port={} user={user} dbname={db}", gw.port)
}

/// What the gateway sends: the direct bytes with each card and SSN redacted.
fn redacted(direct: &[u8]) -> Vec<u8> {
    let mut s = direct.to_vec();
    for secret in [CARD, "5500005555555559", SSN] {
        s = replace(&s, secret.as_bytes(), b"[redacted]");
    }
    s
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn every_client_encoding_reads_and_writes_as_a_direct_connection() {
    let pg = PgServer::start();
    seed(&pg);
    let mut gw = start(&pg);
    for case in CASES {
        let e = case.encode;
        let query = e(&format!(
            "SELECT id, name, note, '{}' AS lit FROM people WHERE id IN ({}) ORDER BY id",
            case.literal, case.ids
        ));
        let missing = e(&format!("SELECT * FROM \"missing_{}\"", case.literal));
        let notice = e(&format!(
            "DO $$BEGIN RAISE NOTICE '{} %', 'card {CARD}'; END$$",
            case.literal
        ));
        let copy = e(&format!(
            "COPY (SELECT name, note FROM people WHERE id IN ({}) ORDER BY id) TO STDOUT",
            case.ids
        ));
        let statements = vec![query, missing, notice, copy, e("SELECT 'still here'")];
        let user = format!("enc_{}", case.encoding.to_lowercase());
        let d = psql(&direct(&pg, "postgres"), case.encoding, &statements);
        let g = psql(&through(&gw, "postgres", &user), case.encoding, &statements);
        assert_eq!(
            String::from_utf8_lossy(&g.stdout),
            String::from_utf8_lossy(&redacted(&d.stdout)),
            "{}: results differ from a direct connection",
            case.encoding
        );
        assert_eq!(
            g.stdout,
            redacted(&d.stdout),
            "{}: result bytes",
            case.encoding
        );
        assert_eq!(
            g.stderr,
            redacted(&d.stderr),
            "{}: errors and notices differ:\n{}\nvs\n{}",
            case.encoding,
            String::from_utf8_lossy(&g.stderr),
            String::from_utf8_lossy(&d.stderr)
        );
        assert!(
            g.stdout.windows(10).any(|w| w == b"still here"),
            "{}: the session went on",
            case.encoding
        );
    }
    assert!(gw.stop(), "{}", gw.log());
    let archive = gw.archive();
    for case in CASES {
        let user = format!("enc_{}", case.encoding.to_lowercase());
        let rows = query_json(
            archive,
            &format!(
                "SELECT command, result_text FROM commands WHERE \"user\" = '{user}' ORDER BY seq"
            ),
        );
        let all = serde_json::to_string(&rows).unwrap();
        assert!(
            rows[0]["command"].as_str().unwrap().contains(case.literal),
            "{}: the recorded command reads in UTF-8: {all}",
            case.encoding
        );
        assert!(
            all.contains(&format!("missing_{}", case.literal)),
            "{}: the error reads in UTF-8: {all}",
            case.encoding
        );
        let expected_name = if case.encoding == "EUC_JP" {
            "日本"
        } else {
            "Zoë Café"
        };
        assert!(
            all.contains(expected_name),
            "{}: the result reads in UTF-8: {all}",
            case.encoding
        );
        let results: String = rows
            .iter()
            .filter_map(|r| r["result_text"].as_str())
            .collect();
        for secret in [CARD, "5500005555555559", SSN] {
            assert!(
                !results.contains(secret),
                "{}: {secret} reached a recorded result: {results}",
                case.encoding
            );
        }
    }
}

#[test]
fn a_sql_ascii_database_passes_bytes_through_and_records_them_visibly() {
    let pg = PgServer::start();
    pg.psql_direct(
        "postgres",
        "CREATE DATABASE bytes ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'",
    );
    let mut seed =
        b"CREATE TABLE t (name text, note text); INSERT INTO t VALUES ('caf\xe9', 'card ".to_vec();
    seed.extend_from_slice(CARD.as_bytes());
    seed.extend_from_slice(b"'), ('\xff\xfe', 'plain')");
    let out = psql(&direct(&pg, "bytes"), "SQL_ASCII", &[seed]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut gw = start(&pg);
    let statements = vec![
        b"SELECT name, note FROM t ORDER BY note".to_vec(),
        b"SELECT 'caf\xe9' AS lit".to_vec(),
        b"COPY t TO STDOUT".to_vec(),
    ];
    let d = psql(&direct(&pg, "bytes"), "SQL_ASCII", &statements);
    let g = psql(&through(&gw, "bytes", "ascii"), "SQL_ASCII", &statements);
    assert_eq!(g.stdout, redacted(&d.stdout), "byte for byte, but the card");
    assert!(g.stdout.windows(4).any(|w| w == b"caf\xe9"));

    // tokio-postgres (which asks for UTF8; a SQL_ASCII database does not convert).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw = rt.block_on(async {
        // tokio-postgres logs in with client_encoding UTF8, which a SQL_ASCII database
        // then validates: switch to SQL_ASCII (no conversion, no check), as a client
        // of such a database does, for the raw COPY bytes.
        let (client, conn) =
            tokio_postgres::connect(&through(&gw, "bytes", "ascii"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute("SET client_encoding TO 'SQL_ASCII'")
            .await
            .unwrap();
        let stream = client.copy_out("COPY t TO STDOUT").await.unwrap();
        use futures::StreamExt;
        let chunks: Vec<bytes::Bytes> = stream.map(Result::unwrap).collect().await;
        let rows = client.simple_query("SELECT count(*) FROM t").await.unwrap();
        let count = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(
            count.as_deref(),
            Some("2"),
            "the session goes on after non-UTF-8 data"
        );
        chunks.concat()
    });
    assert!(raw.windows(6).any(|w| w == b"\xff\xfe\tpla"), "{raw:?}");
    assert!(!raw.windows(CARD.len()).any(|w| w == CARD.as_bytes()));
    assert!(gw.stop(), "{}", gw.log());
    let rows = query_json(
        gw.archive(),
        "SELECT command, result_text FROM commands WHERE \"user\" = 'ascii' ORDER BY seq",
    );
    let all = serde_json::to_string(&rows).unwrap();
    assert!(
        all.contains("caf\\\\xE9"),
        "bytes that are not UTF-8 are shown as \\xHH: {all}"
    );
    assert!(!all.contains('\u{FFFD}'), "never silently replaced: {all}");
}

#[test]
fn tokio_postgres_sessions_in_each_encoding_get_the_direct_bytes() {
    let pg = PgServer::start();
    seed(&pg);
    let mut gw = start(&pg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for case in CASES {
        let copy = format!(
            "COPY (SELECT name, note FROM people WHERE id IN ({}) ORDER BY id) TO STDOUT",
            case.ids
        );
        let encoding = case.encoding;
        let fetch = |conninfo: String| {
            let copy = copy.clone();
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                // tokio-postgres reads text as UTF-8, so the session switches encoding
                // for the raw bytes of a COPY, then back for everything else.
                client
                    .batch_execute(&format!("SET client_encoding TO '{encoding}'"))
                    .await
                    .unwrap();
                use futures::StreamExt;
                let chunks: Vec<bytes::Bytes> = client
                    .copy_out(copy.as_str())
                    .await
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
                    .await;
                client
                    .batch_execute("SET client_encoding TO 'UTF8'")
                    .await
                    .unwrap();
                let err = client
                    .simple_query("SELECT * FROM missing_table_ü")
                    .await
                    .unwrap_err()
                    .to_string();
                let alive = client.simple_query("SELECT 1").await.is_ok();
                (chunks.concat(), err, alive)
            })
        };
        let (d, d_err, _) = fetch(format!(
            "{} password={UPSTREAM_PASSWORD}",
            direct(&pg, "postgres")
        ));
        let (g, g_err, alive) = fetch(through(&gw, "postgres", "tokio"));
        assert!(
            d.windows(3).any(|w| !w.is_ascii()),
            "{}: the direct bytes are not plain ASCII",
            case.encoding
        );
        assert_eq!(g, redacted(&d), "{}: COPY bytes", case.encoding);
        assert_eq!(g_err, d_err, "{}: the error", case.encoding);
        assert!(alive, "{}: the session goes on", case.encoding);
    }
    assert!(gw.stop(), "{}", gw.log());
}
