//! Recording through the gateway's own writer without a gateway: a session's metadata
//! for tests and benchmarks that write history directly (past timestamps, volumes no
//! real client would send in a test's time).

use std::sync::Arc;
use tapline_store::SessionMeta;

/// A PostgreSQL session of `user` through gateway `gateway_id`, started at `start_ns`.
pub fn session_meta(gateway_id: &str, user: &str, start_ns: i64) -> SessionMeta {
    SessionMeta {
        session_id: Arc::from(ulid::Ulid::new().to_string()),
        gateway_id: Arc::from(gateway_id),
        connection: Arc::from("pg"),
        protocol: Arc::from("postgres"),
        user: Arc::from(user),
        groups: Vec::new(),
        client_addr: "127.0.0.1:50000".into(),
        database: Some("app".into()),
        application_name: None,
        upstream: "postgres://app@127.0.0.1:5432/app".into(),
        start_ns,
        issuer: None,
        token_id: None,
        tls: None,
    }
}
