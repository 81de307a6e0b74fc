//! Reading and writing the primitive fields of PostgreSQL messages.

use super::encoding::{PgEncoding, UTF8};
use bytes::{BufMut, BytesMut};
use std::borrow::Cow;

/// A message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed '{tag}' message: {what}")]
pub struct DecodeError {
    pub tag: char,
    pub what: &'static str,
}

/// A cursor over a message body that never panics on short input. Strings are read
/// in the session's client encoding.
pub struct Reader<'a> {
    buf: &'a [u8],
    tag: char,
    encoding: PgEncoding,
}

impl<'a> Reader<'a> {
    /// Reads the body of a message with this tag, its strings as UTF-8 (the protocol's
    /// own names, and sessions that speak UTF-8).
    pub fn new(tag: u8, buf: &'a [u8]) -> Self {
        Self::in_encoding(tag, buf, UTF8)
    }

    /// Reads the body of a message whose strings are in `encoding`.
    pub fn in_encoding(tag: u8, buf: &'a [u8], encoding: PgEncoding) -> Self {
        Reader {
            buf,
            tag: tag as char,
            encoding,
        }
    }

    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            tag: self.tag,
            what,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// A NUL-terminated string's bytes, as they are.
    pub fn cstr_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err("a string is not NUL-terminated"))?;
        let s = &self.buf[..end];
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }

    /// A NUL-terminated string, decoded from the reader's encoding. Bytes the
    /// encoding does not define are kept visible as `\xHH`, never an error: a client
    /// in SQL_ASCII may send any byte, and the session must go on.
    pub fn cstr(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        let encoding = self.encoding;
        self.cstr_bytes().map(|b| encoding.decode(b))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| self.err("it ends early"))?;
        self.buf = rest;
        Ok(b)
    }

    /// A big-endian i16.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count given as i16 that must not be negative.
    pub fn count16(&mut self) -> Result<usize, DecodeError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| self.err("a count is negative"))
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.err("it ends early"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A length-prefixed (i32) value, `None` for SQL NULL (-1).
    pub fn value(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.err("a value length is negative"))?;
        self.bytes(len).map(Some)
    }
}

/// Builds one tagged message, filling in the length at the end.
pub struct Builder {
    buf: BytesMut,
    length_at: usize,
}

impl Builder {
    /// Starts a message with a tag (`None` for startup-phase packets).
    pub fn new(tag: Option<u8>) -> Self {
        Self::with_capacity(tag, 64)
    }

    /// Like `new`, for a message of about `capacity` bytes (a rewritten row).
    pub fn with_capacity(tag: Option<u8>, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(capacity);
        if let Some(t) = tag {
            buf.put_u8(t);
        }
        let length_at = buf.len();
        buf.put_i32(0);
        Builder { buf, length_at }
    }

    pub fn cstr(mut self, s: &str) -> Self {
        self.buf.put_slice(s.as_bytes());
        self.buf.put_u8(0);
        self
    }

    /// A string already in the client's encoding.
    pub fn cstr_bytes(mut self, s: &[u8]) -> Self {
        self.buf.put_slice(s);
        self.buf.put_u8(0);
        self
    }

    pub fn i32(mut self, v: i32) -> Self {
        self.buf.put_i32(v);
        self
    }

    pub fn i16(mut self, v: i16) -> Self {
        self.buf.put_i16(v);
        self
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.buf.put_u8(v);
        self
    }

    pub fn raw(mut self, b: &[u8]) -> Self {
        self.buf.put_slice(b);
        self
    }

    /// The message so far, to write into directly.
    pub fn body_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Finishes the message.
    pub fn finish(mut self) -> bytes::Bytes {
        let start = self.length_at;
        let len = (self.buf.len() - start) as i32;
        self.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self.buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_short_and_unterminated_input() {
        let mut r = Reader::new(b'Q', b"abc");
        assert!(r.cstr().is_err());
        let mut r = Reader::new(b'D', &[0, 0, 0, 9, 1]);
        assert!(r.value().is_err());
        let mut r = Reader::new(b'D', &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.value().unwrap(), None);
    }

    #[test]
    fn strings_are_read_in_the_session_encoding_and_never_refused() {
        let latin1 = super::super::encoding::PgEncoding::by_name("LATIN1").unwrap();
        let mut r = Reader::in_encoding(b'Q', b"select 'caf\xe9'\0", latin1);
        assert_eq!(r.cstr().unwrap(), "select 'café'");
        let mut r = Reader::new(b'Q', b"select '\xe9'\0");
        assert_eq!(r.cstr().unwrap(), "select '\\xE9'");
    }

    #[test]
    fn builder_fills_in_the_length() {
        let m = Builder::new(Some(b'Q')).cstr("select 1").finish();
        assert_eq!(&m[..], b"Q\0\0\0\x0dselect 1\0");
    }
}
