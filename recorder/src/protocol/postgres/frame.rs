//! Framing of the PostgreSQL v3 protocol: splitting a byte stream into messages.
//!
//! Like every proxy must, the framer tells "need more bytes" apart from "this is not
//! PostgreSQL": an incomplete message waits for the next read, a malformed or oversized
//! one ends the session with a clear error before anything is forwarded.

use bytes::{Buf, BytesMut};

/// Why a frame could not be taken from the buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The declared length is smaller than the length field itself.
    #[error("message '{tag}' declares length {length}, below the minimum of 4")]
    BadLength { tag: char, length: i32 },
    /// The message is larger than this gateway accepts.
    #[error(
        "message '{tag}' declares {length} bytes, above the limit of {limit}; raise max_message_bytes if this is legitimate"
    )]
    Oversized {
        tag: char,
        length: usize,
        limit: usize,
    },
    /// A startup packet is shorter than its fixed header or longer than allowed.
    #[error("startup packet declares length {length}, outside 8..={limit}")]
    BadStartupLength { length: i32, limit: usize },
}

/// A complete message: its tag and its whole bytes (tag and length included).
#[derive(Debug, Clone)]
pub struct Frame {
    pub tag: u8,
    pub bytes: bytes::Bytes,
}

impl Frame {
    /// The body after the tag and the length.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }
}

/// Takes one tagged message off the front of `buf`, or `Ok(None)` if incomplete.
pub fn take_message(buf: &mut BytesMut, limit: usize) -> Result<Option<Frame>, FrameError> {
    let Some(len) = peek_message_len(buf, limit)? else {
        return Ok(None);
    };
    let tag = buf[0];
    Ok(Some(Frame {
        tag,
        bytes: buf.split_to(len).freeze(),
    }))
}

/// The total length (tag included) of the message at the front of `buf`, if its
/// header is complete and it is entirely in the buffer.
pub fn peek_message_len(buf: &[u8], limit: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let tag = buf[0];
    let length = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if length < 4 {
        return Err(FrameError::BadLength {
            tag: tag as char,
            length,
        });
    }
    let total = length as usize + 1;
    if total > limit {
        return Err(FrameError::Oversized {
            tag: tag as char,
            length: total,
            limit,
        });
    }
    Ok((buf.len() >= total).then_some(total))
}

/// The largest startup packet accepted; PostgreSQL itself allows 10 000 bytes.
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Takes one untagged startup-phase packet (length, then body) off `buf`.
pub fn take_startup(buf: &mut BytesMut) -> Result<Option<bytes::Bytes>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if length < 8 || length as usize > MAX_STARTUP_LEN {
        return Err(FrameError::BadStartupLength {
            length,
            limit: MAX_STARTUP_LEN,
        });
    }
    if buf.len() < length as usize {
        return Ok(None);
    }
    let mut packet = buf.split_to(length as usize);
    packet.advance(4);
    Ok(Some(packet.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incomplete_message_waits_for_more_bytes() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x0dselect"[..]);
        assert!(take_message(&mut buf, 1024).unwrap().is_none());
        buf.extend_from_slice(b" 1\0");
        let frame = take_message(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(frame.tag, b'Q');
        assert_eq!(frame.body(), b"select 1\0");
        assert!(buf.is_empty());
    }

    #[test]
    fn a_truncated_header_is_incomplete_not_an_error() {
        let mut buf = BytesMut::from(&b"Q\0\0"[..]);
        assert!(take_message(&mut buf, 1024).unwrap().is_none());
    }

    #[test]
    fn a_length_below_four_is_malformed() {
        let mut buf = BytesMut::from(&b"Q\0\0\0\x02"[..]);
        assert!(matches!(
            take_message(&mut buf, 1024),
            Err(FrameError::BadLength {
                tag: 'Q',
                length: 2
            })
        ));
        let mut neg = BytesMut::from(&b"D\xff\xff\xff\xff"[..]);
        assert!(take_message(&mut neg, 1024).is_err());
    }

    #[test]
    fn an_oversized_message_is_refused_before_it_is_buffered() {
        let mut buf = BytesMut::from(&b"d\x10\0\0\0"[..]);
        let err = take_message(&mut buf, 1 << 20).unwrap_err();
        assert!(matches!(err, FrameError::Oversized { tag: 'd', .. }));
        assert!(err.to_string().contains("max_message_bytes"));
    }

    #[test]
    fn startup_packets_are_bounded() {
        let mut ok = BytesMut::from(&b"\0\0\0\x08\x04\xd2\x16\x2f"[..]);
        assert_eq!(
            &take_startup(&mut ok).unwrap().unwrap()[..],
            b"\x04\xd2\x16\x2f"
        );
        let mut short = BytesMut::from(&b"\0\0\0\x04"[..]);
        assert!(take_startup(&mut short).is_err());
        let mut huge = BytesMut::from(&b"\x7f\0\0\0"[..]);
        assert!(take_startup(&mut huge).is_err());
    }
}
