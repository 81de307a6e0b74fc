//! The byte encoding of spool records: little-endian fixed-width integers and
//! length-prefixed strings. It is private to the spool (the archive's long-lived format
//! is Parquet), so it favours speed and simplicity over self-description; the file
//! header carries a version so a future gateway can refuse an older layout clearly.

/// Appends values to a record body.
#[derive(Default)]
pub(crate) struct Encoder {
    pub(crate) buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf
            .extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_le_bytes());
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub(crate) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }

    pub(crate) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(n) => {
                self.u8(1);
                self.u64(n);
            }
            None => self.u8(0),
        }
    }

    pub(crate) fn hash(&mut self, v: &[u8; 32]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn strs(&mut self, v: &[String]) {
        self.u64(v.len() as u64);
        for s in v {
            self.str(s);
        }
    }
}

/// Why a record body could not be decoded (it passed its CRC, so this means a bug or a
/// spool written by an incompatible gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads values back in the order they were written.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "record ends inside {what} (at byte {} of {})",
                    self.pos,
                    self.buf.len()
                ))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        let b = self.take(8, what)?;
        Ok(i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes"));
        self.take(n as usize, what)
    }

    pub(crate) fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError(format!("{what} is not UTF-8")))
    }

    pub(crate) fn opt_string(&mut self, what: &str) -> Result<Option<String>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            _ => self.string(what).map(Some),
        }
    }

    pub(crate) fn opt_u64(&mut self, what: &str) -> Result<Option<u64>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            _ => self.u64(what).map(Some),
        }
    }

    pub(crate) fn hash(&mut self, what: &str) -> Result<[u8; 32], DecodeError> {
        Ok(self.take(32, what)?.try_into().expect("32 bytes"))
    }

    pub(crate) fn strings(&mut self, what: &str) -> Result<Vec<String>, DecodeError> {
        let n = self.u64(what)?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(DecodeError(format!("{what} claims {n} entries")));
        }
        (0..n).map(|_| self.string(what)).collect()
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeError(format!(
                "{} unexpected bytes after the record",
                self.buf.len() - self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_short_input_is_an_error() {
        let mut e = Encoder::default();
        e.u8(7);
        e.u64(u64::MAX);
        e.i64(-5);
        e.str("héllo");
        e.opt_str(None);
        e.opt_u64(Some(9));
        e.hash(&[3; 32]);
        e.strs(&["a".into(), "bc".into()]);
        let mut d = Decoder::new(&e.buf);
        assert_eq!(d.u8("a").unwrap(), 7);
        assert_eq!(d.u64("b").unwrap(), u64::MAX);
        assert_eq!(d.i64("c").unwrap(), -5);
        assert_eq!(d.string("d").unwrap(), "héllo");
        assert_eq!(d.opt_string("e").unwrap(), None);
        assert_eq!(d.opt_u64("f").unwrap(), Some(9));
        assert_eq!(d.hash("g").unwrap(), [3; 32]);
        assert_eq!(d.strings("h").unwrap(), vec!["a", "bc"]);
        d.finish().unwrap();

        let mut short = Decoder::new(&e.buf[..5]);
        short.u8("a").unwrap();
        let err = short.u64("the seq").unwrap_err();
        assert!(err.0.contains("the seq"), "{err}");
    }
}
