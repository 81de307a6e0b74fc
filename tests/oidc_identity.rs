//! OIDC identity in the data path: clients present a JWT as their PostgreSQL password;
//! the gateway checks it against the issuer's JWKS (a file here), refuses bad tokens
//! with a reason the caller can act on, records the identity with the session, and
//! never lets the token or the upstream credential reach the archive or the client.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::json;
use std::sync::{Arc, Mutex};
use support::gateway::{GatewayOpts, GatewayProc, PASSWORD_ENV};
use support::oidc::{AUDIENCE, ISSUER, claims, now, oidc_section, sign};
use support::postgres::{PgServer, UPSTREAM_PASSWORD};
use support::query_json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn start(pg: &PgServer) -> GatewayProc {
    let config = format!(
        "[[connections]]\nname = \"orders\"\nlisten = \"127.0.0.1:{{port}}\"\nupstream = \"{{upstream}}\"\n\
         upstream_password_env = \"{PASSWORD_ENV}\"\nclient_auth = \"oidc\"\n\
         allowed_groups = [\"dba\", \"agents\"]\n{}",
        oidc_section()
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

/// Relays one client to the gateway and keeps every byte the gateway sent back.
async fn relay(gateway_port: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", gateway_port)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                });
                let mut buf = vec![0u8; 16384];
                loop {
                    match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            keep.lock().unwrap().extend_from_slice(&buf[..n]);
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = cw.shutdown().await;
                up.abort();
            });
        }
    });
    (port, seen)
}

async fn login(port: u16, token: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=whoever dbname=postgres password={token} connect_timeout=20"
    );
    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// The refusal a client sees: SQLSTATE and message.
async fn refused(port: u16, token: &str) -> (String, String) {
    let Err(err) = login(port, token).await else {
        panic!("the gateway accepted a token it must refuse");
    };
    let db = err.as_db_error().expect("an ErrorResponse");
    (db.code().code().to_string(), db.message().to_string())
}

#[test]
fn tokens_are_checked_and_the_identity_is_recorded() {
    let pg = PgServer::start();
    let mut gw = start(&pg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    let seen = rt.block_on(async {
        let (port, seen) = relay(gw.port).await;
        // Valid tokens, one per accepted algorithm.
        for (alg, pem, kid, user) in [
            (Algorithm::RS256, "rsa.pem", "test-rsa", "alice"),
            (Algorithm::ES256, "ec.pem", "test-ec", "agent-7"),
            (Algorithm::EdDSA, "ed25519.pem", "test-ed25519", "bob"),
        ] {
            let groups: &[&str] = if user == "agent-7" {
                &["agents"]
            } else {
                &["dba", "staff"]
            };
            let token = sign(alg, pem, kid, &claims(user, groups));
            let client = login(port, &token)
                .await
                .unwrap_or_else(|e| panic!("{alg:?} token for {user} refused: {e}"));
            let rows = client.simple_query("SELECT current_user").await.unwrap();
            assert!(!rows.is_empty(), "{user} can query");
            tokens.push(token);
        }

        let expired = {
            let mut c = claims("carol", &["dba"]);
            c["exp"] = json!(now() - 3600);
            sign(Algorithm::RS256, "rsa.pem", "test-rsa", &c)
        };
        let (code, msg) = refused(port, &expired).await;
        assert_eq!(code, "28000");
        assert!(
            msg.contains("token expired at") && msg.contains("get a fresh token"),
            "{msg}"
        );

        let wrong_aud = {
            let mut c = claims("carol", &["dba"]);
            c["aud"] = json!("api://someone-else");
            sign(Algorithm::RS256, "rsa.pem", "test-rsa", &c)
        };
        let (code, msg) = refused(port, &wrong_aud).await;
        assert_eq!(code, "28000");
        assert!(
            msg.contains("`api://someone-else`") && msg.contains(AUDIENCE),
            "{msg}"
        );

        let wrong_iss = {
            let mut c = claims("carol", &["dba"]);
            c["iss"] = json!("https://evil.example.test/");
            sign(Algorithm::ES256, "ec.pem", "test-ec", &c)
        };
        let (_, msg) = refused(port, &wrong_iss).await;
        assert!(
            msg.contains("issued by `https://evil.example.test/`") && msg.contains(ISSUER),
            "{msg}"
        );

        let unknown_kid = sign(
            Algorithm::RS256,
            "rogue-rsa.pem",
            "rotated-away",
            &claims("carol", &["dba"]),
        );
        let (_, msg) = refused(port, &unknown_kid).await;
        assert!(
            msg.contains("key `rotated-away`") && msg.contains("does not publish"),
            "{msg}"
        );

        let forged = sign(
            Algorithm::RS256,
            "rogue-rsa.pem",
            "test-rsa",
            &claims("carol", &["dba"]),
        );
        let (_, msg) = refused(port, &forged).await;
        assert!(msg.contains("signature does not verify"), "{msg}");

        let wrong_group = sign(
            Algorithm::EdDSA,
            "ed25519.pem",
            "test-ed25519",
            &claims("dave", &["marketing"]),
        );
        let (code, msg) = refused(port, &wrong_group).await;
        assert_eq!(code, "28000");
        assert!(
            msg.contains("user `dave`")
                && msg.contains("`marketing`")
                && msg.contains("`dba`, `agents`"),
            "{msg}"
        );

        let unsigned = {
            use base64::Engine;
            let b64 = |v: serde_json::Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
            };
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                b64(claims("mallory", &["dba"]))
            )
        };
        let (_, msg) = refused(port, &unsigned).await;
        assert!(msg.contains("unsigned (alg none)"), "{msg}");

        let (_, msg) = refused(port, "hunter2").await;
        assert!(msg.contains("not a JWT"), "{msg}");
        tokens.extend([
            expired,
            wrong_aud,
            wrong_iss,
            unknown_kid,
            forged,
            wrong_group,
            unsigned,
        ]);
        seen
    });

    // psql, with the token in PGPASSWORD as a user would pass it.
    let psql = std::process::Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &gw.port.to_string(),
            "-U",
            "whoever",
            "-d",
            "postgres",
            "-c",
            "SELECT 42",
        ])
        .env("PGPASSWORD", &tokens[0])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert!(gw.stop());

    // The identity is stored with the session.
    let sessions = query_json(
        gw.archive(),
        "SELECT \"user\", groups, issuer, token_id FROM sessions WHERE end_reason <> 'auth_failed' ORDER BY start_ts",
    );
    let users: Vec<_> = sessions
        .iter()
        .map(|s| s["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["alice", "agent-7", "bob", "alice"]);
    assert_eq!(sessions[0]["groups"], json!(["dba", "staff"]));
    assert_eq!(
        sessions[0]["issuer"], ISSUER,
        "the issuer is stored with the session"
    );
    assert_eq!(sessions[0]["token_id"], "jti-alice");
    let auth = query_json(
        gw.archive(),
        "SELECT \"user\", status, text FROM events WHERE kind = 'auth' ORDER BY ts",
    );
    assert_eq!(auth.len(), 4 + 8, "every login and every refusal");
    let ok = auth[0]["text"].as_str().unwrap();
    assert!(
        ok.contains("oidc")
            && ok.contains(&format!("issuer {ISSUER}"))
            && ok.contains("token_id jti-alice")
            && ok.contains("login name whoever"),
        "{ok}"
    );
    let denied: Vec<_> = auth.iter().filter(|a| a["status"] == "denied").collect();
    assert_eq!(denied.len(), 8);
    assert!(
        denied
            .iter()
            .any(|a| a["text"].as_str().unwrap().contains("expired"))
    );

    // Neither a token nor the upstream password is anywhere in the archive, and the
    // upstream password never reached a client.
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let mut needles: Vec<String> = tokens
        .iter()
        .map(|t| t.rsplit('.').next().unwrap().to_string())
        .filter(|sig| sig.len() > 16)
        .collect();
    needles.push(tokens[0].clone());
    needles.push(UPSTREAM_PASSWORD.to_string());
    for needle in &needles {
        let n = query_json(
            gw.archive(),
            &format!(
                "SELECT count(*) AS n FROM events WHERE strpos(encode(payload, 'hex'), '{h}') > 0 \
                 OR strpos(coalesce(text, ''), '{needle}') > 0 OR strpos(coalesce(command, ''), '{needle}') > 0",
                h = hex(needle)
            ),
        );
        assert_eq!(n[0]["n"], 0, "a secret is in the events");
        let n = query_json(
            gw.archive(),
            &format!(
                "SELECT count(*) AS n FROM sessions WHERE strpos(\"user\" || upstream || client_addr || coalesce(database, '') \
                 || coalesce(application_name, '') || coalesce(end_reason, '') || array_to_string(groups, ','), '{needle}') > 0"
            ),
        );
        assert_eq!(n[0]["n"], 0, "a secret is in the sessions");
    }
    let sent = seen.lock().unwrap().clone();
    assert!(!sent.is_empty());
    assert!(
        !sent
            .windows(UPSTREAM_PASSWORD.len())
            .any(|w| w == UPSTREAM_PASSWORD.as_bytes()),
        "the upstream password reached a client"
    );
}
