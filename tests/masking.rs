//! Inline masking against a real PostgreSQL through the gateway, with psql and
//! tokio-postgres: every detector and every strategy, in text and binary formats,
//! COPY OUT in text, csv and binary, a server error's detail and a notice; an exempt
//! group that sees raw values while the archive keeps them masked (unless the rule
//! records raw); and then the whole decompressed archive searched for every seeded
//! secret.

mod support;

use std::process::Command;
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::oidc::{oidc_section, token};
use support::parquet_dump::{contains, decompressed_archive};
use support::postgres::PgServer;
use support::query_json;

const NAME: &str = "Alice Doe";
const EMAIL: &str = "alice.doe@example.com";
const SSN: &str = "123-45-6789";
const CARD: &str = "4111111111111111";
const IBAN: &str = "DE89370400440532013000";
const PHONE: &str = "+1 415-555-0132";
const IPV4: &str = "10.20.30.40";
const IPV6: &str = "2001:db8::8a2e:370:7334";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SAS_SIG: &str = "abcdEFGH1234%2Bxyz%3D";
const CONN_KEY: &str = "c2VjcmV0a2V5Zm9yYWNjdA";
const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
const EMPLOYEE: &str = "EMP-424242";
const API_KEY: &str = "live_key_5f3a9c";

fn azure_key() -> String {
    format!("{}Xy==", "Ab3+".repeat(21))
}

/// Every value no client outside the exemptions may see, and the archive may not hold.
fn secrets() -> Vec<String> {
    vec![
        NAME.into(),
        EMAIL.into(),
        SSN.into(),
        CARD.into(),
        IBAN.into(),
        PHONE.into(),
        IPV4.into(),
        IPV6.into(),
        JWT.into(),
        AWS_KEY.into(),
        azure_key(),
        SAS_SIG.into(),
        CONN_KEY.into(),
        PEM_BODY.into(),
        EMPLOYEE.into(),
    ]
}

fn seed(pg: &PgServer) {
    pg.psql_direct("postgres", "CREATE DATABASE crm");
    let note = format!(
        "ssn {SSN}; card {CARD}; from {IPV4} and {IPV6}; token {JWT}; aws {AWS_KEY}; \
         storage key {key}; sas https://acct.blob.core.windows.net/c?sv=2022-11-02&sig={SAS_SIG}; \
         conn DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={CONN_KEY};EndpointSuffix=core.windows.net; \
         badge {EMPLOYEE}; -----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----",
        key = azure_key()
    );
    pg.psql_direct(
        "crm",
        &format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name text, email text UNIQUE, ssn text, card text, \
             iban text, phone text, ip text, salary int, profile jsonb, api_key varchar(64), note text); \
             INSERT INTO customers VALUES \
             (1, '{NAME}', '{EMAIL}', '{SSN}', '{CARD}', '{IBAN}', '{PHONE}', '{IPV4}', 98765, \
              '{{\"email\": \"{EMAIL}\", \"tier\": \"gold\"}}', '{API_KEY}', $note${note}$note$), \
             (2, 'Bob', 'bob@example.org', '{SSN}', '5500005555555559', NULL, NULL, NULL, 50000, NULL, NULL, 'nothing to hide')"
        ),
    );
}

fn start(pg: &PgServer) -> GatewayProc {
    let rules = r#"
[[mask]]
name = "cards"
columns = ["customers.card"]
strategy = "partial"
keep = 4

[[mask]]
name = "ssn"
columns = ["ssn"]
strategy = "hash"

[[mask]]
name = "salary"
columns = ["public.customers.salary"]
strategy = "redact"

[[mask]]
name = "profile"
columns = ["profile"]
strategy = "redact"

[[mask]]
name = "names"
columns = ["name"]
strategy = "null"
exempt_groups = ["dba"]

[[mask]]
name = "keys"
columns = ["api_key"]
strategy = "redact"
exempt_groups = ["dba"]
record_raw = true

[[mask]]
name = "contact"
detectors = ["email", "phone", "iban"]
strategy = "redact"

[[mask]]
name = "secrets"
detectors = ["credit_card", "us_ssn", "ipv4", "ipv6", "jwt", "aws_access_key_id", "azure_storage_key", "azure_sas_token", "azure_connection_string", "pem_private_key"]
strategy = "redact"

[[mask]]
name = "employee"
pattern = "EMP-\\d{6}"
strategy = "hash"
"#;
    let config = format!(
        "{rules}\n[[connections]]\nname = \"crm\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\nclient_auth = \"oidc\"\n{}",
        oidc_section()
    );
    GatewayProc::start_with_config(
        GatewayOpts {
            upstream: pg.upstream_url("crm"),
            flush_interval: "1s",
            ..Default::default()
        },
        &config,
    )
}

async fn login(port: u16, token: &str) -> tokio_postgres::Client {
    let conninfo =
        format!("host=127.0.0.1 port={port} user=x dbname=crm password={token} connect_timeout=20");
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .expect("login through the gateway");
    tokio::spawn(conn);
    client
}

fn psql(port: u16, token: &str, sql: &str) -> (String, String) {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "x",
            "-d",
            "crm",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", token)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql `{sql}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what} shows `{s}`:\n{text}");
    }
}

fn is_hash_token(v: &str) -> bool {
    v.len() == 18 && v.starts_with("h:") && v[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn masking_rewrites_every_format_and_nothing_raw_reaches_the_archive() {
    let pg = PgServer::start();
    seed(&pg);
    let mut gw = start(&pg);
    let agent = token("agent-7", &["agents"]);
    let dba = token("dana", &["dba"]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = login(gw.port, &agent).await;
        // Binary format (tokio-postgres prepares, and reads results in binary).
        let rows = c
            .query(
                "SELECT id, name, email, ssn, card, iban, phone, ip, salary, profile, api_key, note \
                 FROM customers ORDER BY id",
                &[],
            )
            .await
            .expect("a masked result is still a well-formed result");
        let r = &rows[0];
        assert_eq!(r.get::<_, Option<String>>("name"), None, "null strategy");
        assert_eq!(r.get::<_, String>("email"), "[redacted]");
        let ssn: String = r.get("ssn");
        assert!(is_hash_token(&ssn), "hash strategy: {ssn}");
        assert_eq!(
            rows[1].get::<_, String>("ssn"),
            ssn,
            "equal values give equal tokens"
        );
        assert_eq!(r.get::<_, String>("card"), "************1111", "partial");
        assert_eq!(rows[1].get::<_, String>("card"), "************5559");
        assert_eq!(r.get::<_, String>("iban"), "[redacted]");
        assert_eq!(r.get::<_, String>("phone"), "[redacted]");
        assert_eq!(r.get::<_, String>("ip"), "[redacted]");
        assert_eq!(
            r.get::<_, Option<i32>>("salary"),
            None,
            "a binary int under a column rule is nulled"
        );
        assert_eq!(
            r.get::<_, serde_json::Value>("profile"),
            serde_json::Value::String("[redacted]".into()),
            "a masked jsonb value is still JSON"
        );
        assert_eq!(r.get::<_, String>("api_key"), "[redacted]");
        let note: String = r.get("note");
        assert_no_secret("the binary note", &note);
        assert!(note.contains("card [redacted]"), "{note}");
        assert!(
            note.split_whitespace().any(|w| is_hash_token(w.trim_end_matches(';'))),
            "the custom pattern hashes: {note}"
        );
        assert_eq!(rows[1].get::<_, String>("note"), "nothing to hide");

        // Text format (simple query protocol).
        let msgs = c
            .simple_query("SELECT name, email, salary, profile, note FROM customers WHERE id = 1")
            .await
            .unwrap();
        let row = msgs
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .expect("a row");
        assert_eq!(row.get("name"), None);
        assert_eq!(row.get("email"), Some("[redacted]"));
        assert_eq!(row.get("salary"), Some("[redacted]"), "text keeps a marker");
        assert_eq!(row.get("profile"), Some("\"[redacted]\""));
        assert_no_secret("the text note", row.get("note").unwrap());

        // A server error quotes the duplicate key in its detail.
        let err = c
            .simple_query("INSERT INTO customers (id, email) SELECT 99, email FROM customers WHERE id = 1")
            .await
            .unwrap_err();
        let db = err.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), "23505");
        let detail = db.detail().unwrap_or_default();
        assert!(detail.contains("[redacted]") && !detail.contains(EMAIL), "{detail}");

        // Binary COPY OUT: covered fields are nulled, text fields scanned.
        use futures::TryStreamExt;
        let copied: Vec<bytes::Bytes> = c
            .copy_out("COPY customers (id, ssn, salary, note) TO STDOUT (FORMAT binary)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let all: Vec<u8> = copied.concat();
        assert!(all.starts_with(b"PGCOPY\n\xff\r\n\0"), "still binary COPY");
        assert_no_secret("binary COPY", &String::from_utf8_lossy(&all));
        assert!(contains(&all, "nothing to hide"));

        // The exempt group sees raw values where it is exempt, and masked ones elsewhere.
        let d = login(gw.port, &dba).await;
        let rows = d
            .query("SELECT name, api_key, card FROM customers WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(rows[0].get::<_, String>("name"), NAME);
        assert_eq!(rows[0].get::<_, String>("api_key"), API_KEY);
        assert_eq!(rows[0].get::<_, String>("card"), "************1111");
    });

    // psql, text format, COPY OUT in text, csv and from a query, and a notice.
    let (out, _) = psql(
        gw.port,
        &agent,
        "SELECT name, email, ssn, card, salary, note FROM customers ORDER BY id",
    );
    assert_no_secret("psql", &out);
    assert!(
        out.contains("[redacted]") && out.contains("************1111"),
        "{out}"
    );
    let (out, _) = psql(gw.port, &agent, "COPY customers TO STDOUT");
    assert_no_secret("COPY text", &out);
    let first: Vec<&str> = out.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[1], "\\N", "name nulled in COPY: {first:?}");
    assert_eq!(first[4], "************1111", "{first:?}");
    assert_eq!(first[8], "[redacted]", "salary in text COPY: {first:?}");
    let (out, _) = psql(
        gw.port,
        &agent,
        "COPY customers (id, email, card, note) TO STDOUT WITH (FORMAT csv, HEADER)",
    );
    assert_no_secret("COPY csv", &out);
    assert!(
        out.starts_with("id,email,card,note"),
        "the header stays: {out}"
    );
    let (out, _) = psql(
        gw.port,
        &agent,
        "COPY (SELECT id, card AS c, upper(email) AS e FROM customers) TO STDOUT",
    );
    assert_no_secret("COPY of a query", &out.to_lowercase());
    assert!(out.contains("************1111"), "{out}");
    let (_, err) = psql(
        gw.port,
        &agent,
        "DO $$ DECLARE c text; BEGIN SELECT card INTO c FROM customers WHERE id = 1; \
         RAISE NOTICE 'card on file: %', c; END $$",
    );
    assert!(err.contains("card on file: [redacted]"), "{err}");
    let (out, _) = psql(
        gw.port,
        &agent,
        "LISTEN billing; DO $$ BEGIN PERFORM pg_notify('billing', \
         (SELECT 'charge ' || card FROM customers WHERE id = 1)); END $$",
    );
    assert!(
        out.contains("payload \"charge [redacted]\""),
        "a NOTIFY payload is masked: {out}"
    );
    assert!(gw.stop());

    // The archive: what was masked is listed, and no raw secret is anywhere in it.
    let commands = query_json(
        gw.archive(),
        "SELECT command, masked FROM commands WHERE command LIKE 'SELECT id, name, email%'",
    );
    let masked = commands[0]["masked"].to_string();
    for entry in [
        "cards/column:customers.card=2",
        "ssn/column:customers.ssn=2",
        "salary/binary_nulled:salary=2",
        "names/column:customers.name=2",
        "profile/column:customers.profile=1",
        "contact/detector:email=2",
        "secrets/detector:ipv4=2",
        "secrets/detector:credit_card=1",
        "employee/detector:employee=1",
    ] {
        assert!(masked.contains(entry), "{entry} not in {masked}");
    }
    let sessions = query_json(gw.archive(), "SELECT sum(masked_values) AS n FROM sessions");
    assert!(sessions[0]["n"].as_i64().unwrap() > 20, "{sessions:?}");
    let text = query_json(
        gw.archive(),
        "SELECT result_text FROM commands WHERE command LIKE 'SELECT name, email, salary%'",
    );
    assert!(
        text[0]["result_text"]
            .as_str()
            .unwrap()
            .contains("[redacted]"),
        "{text:?}"
    );
    let archive = decompressed_archive(gw.archive());
    for s in secrets() {
        assert!(!contains(&archive, &s), "`{s}` is in the archive");
    }
    assert!(
        contains(&archive, API_KEY),
        "record_raw keeps the exempt caller's raw value in the archive"
    );
    assert!(contains(&archive, "************1111"));
}
