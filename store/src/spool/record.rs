//! The four kinds of spool record. A spool file is a header followed by framed records:
//! first a [`SpoolRecord::State`] for every session live when the file was opened (so
//! each file can be read on its own), then opens, events and ends as they happened.

use super::codec::{DecodeError, Decoder, Encoder};
use crate::event::{Direction, Event, Kind, Status};
use crate::session::{SessionCounts, SessionMeta, SessionTls};
use bytes::Bytes;
use std::sync::Arc;

const TAG_STATE: u8 = 1;
const TAG_OPENED: u8 = 2;
const TAG_EVENT: u8 = 3;
const TAG_ENDED: u8 = 4;

/// The state of a live session carried over into a new spool file.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub meta: SessionMeta,
    pub counts: SessionCounts,
    /// The last seq and its hash, if the session has recorded anything.
    pub last: Option<(u64, [u8; 32])>,
}

/// One event as the spool keeps it: the session's fixed facts live in its
/// `Opened`/`State` record, so they are not repeated per event.
#[derive(Debug, Clone)]
pub struct SpooledEvent {
    pub session_id: String,
    pub seq: u64,
    pub ts_ns: i64,
    pub direction: Direction,
    pub kind: Kind,
    pub command: Option<String>,
    pub status: Status,
    pub row_count: Option<u64>,
    pub duration_us: Option<u64>,
    pub masked: Vec<String>,
    pub payload: Bytes,
    pub text: Option<String>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl SpooledEvent {
    /// Joins the event with its session's facts into an archive row.
    pub fn into_event(self, meta: &SessionMeta) -> Event {
        Event {
            session_id: meta.session_id.clone(),
            seq: self.seq,
            ts_ns: self.ts_ns,
            gateway_id: meta.gateway_id.clone(),
            connection: meta.connection.clone(),
            protocol: meta.protocol.clone(),
            user: meta.user.clone(),
            direction: self.direction,
            kind: self.kind,
            command: self.command,
            status: self.status,
            row_count: self.row_count,
            duration_us: self.duration_us,
            masked: self.masked,
            payload: self.payload,
            text: self.text,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// A decoded spool record.
#[derive(Debug, Clone)]
pub enum SpoolRecord {
    State(Box<SessionState>),
    Opened(Box<SessionMeta>),
    Event(Box<SpooledEvent>),
    Ended {
        session_id: String,
        end_ns: i64,
        reason: String,
    },
}

/// Encodes an event straight from the archive row, without building a
/// [`SpooledEvent`] first (this runs once per recorded event).
pub fn encode_event(e: &Event) -> Vec<u8> {
    let mut w = Encoder::with_capacity(
        140 + e.payload.len()
            + e.command.as_ref().map_or(0, String::len)
            + e.text.as_ref().map_or(0, String::len),
    );
    w.u8(TAG_EVENT);
    w.str(&e.session_id);
    w.u64(e.seq);
    w.i64(e.ts_ns);
    w.u8(direction_code(e.direction));
    w.u8(kind_code(e.kind));
    w.opt_str(e.command.as_deref());
    w.u8(status_code(e.status));
    w.opt_u64(e.row_count);
    w.opt_u64(e.duration_us);
    w.strs(&e.masked);
    w.bytes(&e.payload);
    w.opt_str(e.text.as_deref());
    w.hash(&e.prev_hash);
    w.hash(&e.hash);
    w.buf
}

/// Encodes a session opening.
pub fn encode_opened(meta: &SessionMeta) -> Vec<u8> {
    let mut w = Encoder::with_capacity(256);
    w.u8(TAG_OPENED);
    put_meta(&mut w, meta);
    w.buf
}

/// Encodes a session's carried-over state.
pub fn encode_state(s: &SessionState) -> Vec<u8> {
    let mut w = Encoder::with_capacity(384);
    w.u8(TAG_STATE);
    put_meta(&mut w, &s.meta);
    let c = &s.counts;
    for n in [
        c.events,
        c.commands,
        c.errors,
        c.blocked,
        c.masked_values,
        c.bytes_from_client,
        c.bytes_from_server,
    ] {
        w.u64(n);
    }
    match &s.last {
        Some((seq, hash)) => {
            w.u8(1);
            w.u64(*seq);
            w.hash(hash);
        }
        None => w.u8(0),
    }
    w.buf
}

/// Encodes a session's end.
pub fn encode_ended(session_id: &str, end_ns: i64, reason: &str) -> Vec<u8> {
    let mut w = Encoder::with_capacity(64 + reason.len());
    w.u8(TAG_ENDED);
    w.str(session_id);
    w.i64(end_ns);
    w.str(reason);
    w.buf
}

/// Decodes one record body (which has already passed its CRC) of the layout this
/// gateway writes.
pub fn decode(body: &[u8]) -> Result<SpoolRecord, DecodeError> {
    decode_layout(body, LAYOUT)
}

/// The spool layout this gateway writes (byte 8 of a spool file's header). Layout 2,
/// which the gateway before it wrote, is still read, so a spool left by that version
/// drains after an upgrade.
pub const LAYOUT: u8 = 3;

/// The oldest spool layout this gateway still reads.
pub const OLDEST_LAYOUT: u8 = 2;

/// Decodes one record body of spool layout `layout`.
pub fn decode_layout(body: &[u8], layout: u8) -> Result<SpoolRecord, DecodeError> {
    let mut r = Decoder::new(body);
    let record = match r.u8("the record tag")? {
        TAG_STATE => {
            let meta = get_meta(&mut r, layout)?;
            let counts = SessionCounts {
                events: r.u64("events")?,
                commands: r.u64("commands")?,
                errors: r.u64("errors")?,
                blocked: r.u64("blocked")?,
                masked_values: r.u64("masked_values")?,
                bytes_from_client: r.u64("bytes_from_client")?,
                bytes_from_server: r.u64("bytes_from_server")?,
            };
            let last = match r.u8("last")? {
                0 => None,
                _ => Some((r.u64("last seq")?, r.hash("last hash")?)),
            };
            SpoolRecord::State(Box::new(SessionState { meta, counts, last }))
        }
        TAG_OPENED => SpoolRecord::Opened(Box::new(get_meta(&mut r, layout)?)),
        TAG_EVENT => SpoolRecord::Event(Box::new(SpooledEvent {
            session_id: r.string("session_id")?,
            seq: r.u64("seq")?,
            ts_ns: r.i64("ts_ns")?,
            direction: direction_from(r.u8("direction")?)?,
            kind: kind_from(r.u8("kind")?)?,
            command: r.opt_string("command")?,
            status: status_from(r.u8("status")?)?,
            row_count: r.opt_u64("row_count")?,
            duration_us: r.opt_u64("duration_us")?,
            masked: r.strings("masked")?,
            payload: Bytes::copy_from_slice(r.bytes("payload")?),
            text: r.opt_string("text")?,
            prev_hash: r.hash("prev_hash")?,
            hash: r.hash("hash")?,
        })),
        TAG_ENDED => SpoolRecord::Ended {
            session_id: r.string("session_id")?,
            end_ns: r.i64("end_ns")?,
            reason: r.string("reason")?,
        },
        other => return Err(DecodeError(format!("unknown record tag {other}"))),
    };
    r.finish()?;
    Ok(record)
}

fn put_meta(w: &mut Encoder, m: &SessionMeta) {
    w.str(&m.session_id);
    w.str(&m.gateway_id);
    w.str(&m.connection);
    w.str(&m.protocol);
    w.str(&m.user);
    w.strs(&m.groups);
    w.str(&m.client_addr);
    w.opt_str(m.database.as_deref());
    w.opt_str(m.application_name.as_deref());
    w.str(&m.upstream);
    w.i64(m.start_ns);
    w.opt_str(m.issuer.as_deref());
    w.opt_str(m.token_id.as_deref());
    match &m.tls {
        None => w.u8(0),
        Some(t) => {
            w.u8(1);
            w.str(&t.version);
            w.str(&t.cipher);
            w.opt_str(t.client_cert.as_deref());
        }
    }
}

fn get_meta(r: &mut Decoder<'_>, layout: u8) -> Result<SessionMeta, DecodeError> {
    Ok(SessionMeta {
        session_id: Arc::from(r.string("session_id")?),
        gateway_id: Arc::from(r.string("gateway_id")?),
        connection: Arc::from(r.string("connection")?),
        protocol: Arc::from(r.string("protocol")?),
        user: Arc::from(r.string("user")?),
        groups: r.strings("groups")?,
        client_addr: r.string("client_addr")?,
        database: r.opt_string("database")?,
        application_name: r.opt_string("application_name")?,
        upstream: r.string("upstream")?,
        start_ns: r.i64("start_ns")?,
        issuer: r.opt_string("issuer")?,
        token_id: r.opt_string("token_id")?,
        // Layout 2 (before the TLS facts) ends here.
        tls: match layout {
            ..=2 => None,
            _ => match r.u8("tls")? {
                0 => None,
                _ => Some(SessionTls {
                    version: r.string("tls version")?,
                    cipher: r.string("tls cipher")?,
                    client_cert: r.opt_string("tls client_cert")?,
                }),
            },
        },
    })
}

const DIRECTIONS: [Direction; 3] = [Direction::Client, Direction::Server, Direction::Gateway];
const KINDS: [Kind; 12] = [
    Kind::SessionStart,
    Kind::Auth,
    Kind::Query,
    Kind::Result,
    Kind::Error,
    Kind::Input,
    Kind::Output,
    Kind::Resize,
    Kind::Request,
    Kind::Response,
    Kind::Policy,
    Kind::SessionEnd,
];
const STATUSES: [Status; 6] = Status::ALL;

fn direction_code(d: Direction) -> u8 {
    DIRECTIONS.iter().position(|x| *x == d).unwrap_or(0) as u8
}

fn kind_code(k: Kind) -> u8 {
    KINDS.iter().position(|x| *x == k).unwrap_or(0) as u8
}

fn status_code(s: Status) -> u8 {
    STATUSES.iter().position(|x| *x == s).unwrap_or(0) as u8
}

fn direction_from(c: u8) -> Result<Direction, DecodeError> {
    DIRECTIONS
        .get(c as usize)
        .copied()
        .ok_or_else(|| DecodeError(format!("unknown direction code {c}")))
}

fn kind_from(c: u8) -> Result<Kind, DecodeError> {
    KINDS
        .get(c as usize)
        .copied()
        .ok_or_else(|| DecodeError(format!("unknown kind code {c}")))
}

fn status_from(c: u8) -> Result<Status, DecodeError> {
    STATUSES
        .get(c as usize)
        .copied()
        .ok_or_else(|| DecodeError(format!("unknown status code {c}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta(id: &str) -> SessionMeta {
        SessionMeta {
            session_id: Arc::from(id),
            gateway_id: Arc::from("gw"),
            connection: Arc::from("pg"),
            protocol: Arc::from("postgres"),
            user: Arc::from("alice"),
            groups: vec!["dba".into()],
            client_addr: "127.0.0.1:5000".into(),
            database: Some("app".into()),
            application_name: None,
            upstream: "postgres://db".into(),
            start_ns: 42,
            issuer: Some("https://login.example.test/t/v2.0".into()),
            token_id: Some("jti-42".into()),
            tls: Some(SessionTls {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                client_cert: Some("CN=alice sha256:00ff".into()),
            }),
        }
    }

    #[test]
    fn a_layout_2_spool_record_still_decodes_without_tls() {
        let mut m = meta("S2");
        m.tls = None;
        let mut v2 = encode_opened(&m);
        // Layout 2 ended the session facts at token_id; layout 3 adds the TLS flag.
        assert_eq!(v2.pop(), Some(0));
        let SpoolRecord::Opened(back) = decode_layout(&v2, 2).unwrap() else {
            panic!("not an open")
        };
        assert_eq!((back.token_id.as_deref(), back.tls), (Some("jti-42"), None));
        // Read as layout 3, the same bytes are a record cut short.
        assert!(decode(&v2).is_err());
    }

    #[test]
    fn every_record_kind_round_trips() {
        let m = meta("S1");
        let event = Event {
            session_id: m.session_id.clone(),
            seq: 3,
            ts_ns: 99,
            gateway_id: m.gateway_id.clone(),
            connection: m.connection.clone(),
            protocol: m.protocol.clone(),
            user: m.user.clone(),
            direction: Direction::Server,
            kind: Kind::Result,
            command: Some("select 1".into()),
            status: Status::Blocked,
            row_count: Some(1),
            duration_us: None,
            masked: vec!["detector:email=2".into()],
            payload: Bytes::from_static(b"\x00\x01D"),
            text: Some("1".into()),
            prev_hash: [1; 32],
            hash: [2; 32],
        };
        let SpoolRecord::Event(back) = decode(&encode_event(&event)).unwrap() else {
            panic!("not an event")
        };
        assert_eq!(back.into_event(&m), event);

        let SpoolRecord::Opened(back) = decode(&encode_opened(&m)).unwrap() else {
            panic!("not an open")
        };
        assert_eq!(back.session_id, m.session_id);
        assert_eq!(back.groups, m.groups);
        assert_eq!(back.database, m.database);
        assert_eq!(back.issuer, m.issuer);
        assert_eq!(back.token_id, m.token_id);
        assert_eq!(back.tls, m.tls);

        let state = SessionState {
            meta: m.clone(),
            counts: SessionCounts {
                events: 4,
                commands: 2,
                bytes_from_server: 77,
                ..Default::default()
            },
            last: Some((3, [2; 32])),
        };
        let SpoolRecord::State(back) = decode(&encode_state(&state)).unwrap() else {
            panic!("not a state")
        };
        assert_eq!(back.counts, state.counts);
        assert_eq!(back.last, state.last);
        assert_eq!(back.meta.tls, m.tls);

        let SpoolRecord::Ended {
            session_id,
            end_ns,
            reason,
        } = decode(&encode_ended("S1", 5, "client_closed")).unwrap()
        else {
            panic!("not an end")
        };
        assert_eq!(
            (session_id.as_str(), end_ns, reason.as_str()),
            ("S1", 5, "client_closed")
        );

        let mut bad = encode_ended("S1", 5, "x");
        bad.push(0);
        assert!(decode(&bad).unwrap_err().0.contains("unexpected bytes"));
        assert!(decode(&[9]).unwrap_err().0.contains("unknown record tag"));
    }
}
