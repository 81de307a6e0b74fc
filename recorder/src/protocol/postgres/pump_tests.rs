//! The pumps, byte for byte: what each side is forwarded and what is recorded, for
//! scripted traffic (see `pump_harness`).

use super::auth::ready_for_query;
use super::backend_pump::BackendEnd;
use super::frontend_pump::FrontendEnd;
use super::pump_harness::{PumpHarness, default_limits};
use super::wire::Builder;
use tapline_store::{Kind, Status};

fn query(sql: &str) -> bytes::Bytes {
    Builder::new(Some(b'Q')).cstr(sql).finish()
}

fn row_description(names: &[&str]) -> bytes::Bytes {
    let mut b = Builder::new(Some(b'T')).i16(names.len() as i16);
    for n in names {
        // name, table oid, column, type oid (text), size, modifier, format
        b = b.cstr(n).i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0);
    }
    b.finish()
}

fn data_row(values: &[&[u8]]) -> bytes::Bytes {
    let mut b = Builder::new(Some(b'D')).i16(values.len() as i16);
    for v in values {
        b = b.i32(v.len() as i32).raw(v);
    }
    b.finish()
}

fn complete(tag: &str) -> bytes::Bytes {
    Builder::new(Some(b'C')).cstr(tag).finish()
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[tokio::test]
async fn a_simple_query_crosses_unchanged_and_records_its_command_and_result() {
    let mut h = PumpHarness::start(default_limits()).await;
    let q = query("SELECT name FROM people");
    assert_eq!(
        h.client_sends(&q).await,
        q.to_vec(),
        "the upstream gets the bytes sent"
    );
    let answer = concat(&[
        &row_description(&["name"]),
        &data_row(&[b"ada"]),
        &data_row(&[b"grace"]),
        &complete("SELECT 2"),
        &ready_for_query(b'I'),
    ]);
    assert_eq!(
        h.server_sends(&answer).await,
        answer,
        "the client gets the answer as sent"
    );
    let done = h.finish().await;
    assert!(matches!(done.frontend, Ok(FrontendEnd::Closed)));
    assert!(matches!(done.backend, Ok(BackendEnd::Closed)));
    let q_event = done.events.iter().find(|e| e.kind == Kind::Query).unwrap();
    assert_eq!(q_event.command.as_deref(), Some("SELECT name FROM people"));
    assert_eq!(q_event.payload.as_ref(), q.as_ref());
    let result = done.events.iter().find(|e| e.kind == Kind::Result).unwrap();
    assert_eq!(result.command.as_deref(), Some("SELECT name FROM people"));
    assert_eq!(result.row_count, Some(2));
    assert_eq!(result.text.as_deref(), Some("name\nada\ngrace"));
    assert_eq!(
        result.payload.as_ref(),
        &answer[..],
        "the recorded payload is the answer"
    );
}

/// A pipelined burst of extended-protocol messages of mixed sizes, one of them
/// larger than a read buffer, each side split at awkward places: every byte arrives
/// once and in order, and each Execute is recorded with its own parameters.
#[tokio::test]
async fn a_pipelined_burst_of_mixed_sizes_is_forwarded_byte_for_byte() {
    let mut h = PumpHarness::start(default_limits()).await;
    let big = "x".repeat(300_000);
    let params: [&str; 3] = ["1", &big, "three"];
    let mut burst = Vec::new();
    burst.extend_from_slice(
        &Builder::new(Some(b'P'))
            .cstr("s1")
            .cstr("SELECT $1::text")
            .i16(0)
            .finish(),
    );
    for p in params {
        burst.extend_from_slice(
            &Builder::new(Some(b'B'))
                .cstr("")
                .cstr("s1")
                .i16(0)
                .i16(1)
                .i32(p.len() as i32)
                .raw(p.as_bytes())
                .i16(0)
                .finish(),
        );
        burst.extend_from_slice(&Builder::new(Some(b'E')).cstr("").i32(0).finish());
    }
    burst.extend_from_slice(&Builder::new(Some(b'S')).finish());
    // Sent in pieces that cut headers and bodies.
    let upstream_got = h.client_sends_in_pieces(&burst, 4093).await;
    assert_eq!(upstream_got, burst);

    let mut answer = Builder::new(Some(b'1')).finish().to_vec();
    for p in params {
        answer.extend_from_slice(&Builder::new(Some(b'2')).finish());
        answer.extend_from_slice(&data_row(&[p.as_bytes()]));
        answer.extend_from_slice(&complete("SELECT 1"));
    }
    answer.extend_from_slice(&ready_for_query(b'I'));
    let client_got = h.server_sends_in_pieces(&answer, 4099).await;
    assert_eq!(client_got, answer);

    let done = h.finish().await;
    let executed: Vec<_> = done
        .events
        .iter()
        .filter(|e| e.kind == Kind::Query)
        .map(|e| e.command.clone().unwrap())
        .collect();
    assert_eq!(executed.len(), 3, "{executed:?}");
    assert_eq!(executed[0], "SELECT $1::text\n-- params: $1 = '1'");
    assert!(
        executed[1].contains(&big),
        "the long parameter is recorded whole"
    );
    assert_eq!(executed[2], "SELECT $1::text\n-- params: $1 = 'three'");
    let results: Vec<_> = done
        .events
        .iter()
        .filter(|e| e.kind == Kind::Result)
        .collect();
    assert_eq!(results.len(), 3);
    for (r, p) in results.iter().zip(params) {
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.text.as_deref(), Some(p), "each result holds its own row");
    }
}

#[tokio::test]
async fn a_client_length_that_lies_ends_the_session_with_a_fatal_not_a_panic() {
    let mut h = PumpHarness::start(default_limits()).await;
    // A Query whose length says 3: less than its own length field.
    let told = h.client_sends(b"Q\x00\x00\x00\x03").await;
    assert!(told.is_empty(), "nothing reaches the upstream: {told:?}");
    let done = h.finish().await;
    assert!(done.frontend.is_err());
    let told = String::from_utf8_lossy(&done.client_got);
    assert!(
        told.starts_with('E') && told.contains("FATAL") && told.contains("08P01"),
        "the client is told why: {told:?}"
    );
}

#[tokio::test]
async fn terminate_ends_the_client_side_as_terminated() {
    let mut h = PumpHarness::start(default_limits()).await;
    let t = Builder::new(Some(b'X')).finish();
    assert_eq!(h.client_sends(&t).await, t.to_vec());
    let done = h.finish().await;
    assert!(matches!(done.frontend, Ok(FrontendEnd::Terminated)));
}
