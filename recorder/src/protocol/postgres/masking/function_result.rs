//! FunctionCallResponse ('V'): the value a fast-path function call returns. It is a
//! value like any DataRow cell, so it is masked as the one cell of a row no result
//! described (by the detectors, as text): a function that returns a card number does
//! not get it past the masking by being called through the fast path.

use bytes::{BufMut, Bytes, BytesMut};

/// The 'V' message as a one-column DataRow ('D'), or `None` if it is too short to
/// hold its value's length.
pub fn as_data_row(raw: &[u8]) -> Option<Bytes> {
    let value = raw.get(5..)?;
    if value.len() < 4 {
        return None;
    }
    let mut out = BytesMut::with_capacity(raw.len() + 2);
    out.put_u8(b'D');
    out.put_i32((4 + 2 + value.len()) as i32);
    out.put_i16(1);
    out.put_slice(value);
    Some(out.freeze())
}

/// A one-column DataRow back as the 'V' message it stood for.
pub fn from_data_row(row: &[u8]) -> Bytes {
    let value = row.get(7..).unwrap_or_default();
    let mut out = BytesMut::with_capacity(value.len() + 5);
    out.put_u8(b'V');
    out.put_i32((4 + value.len()) as i32);
    out.put_slice(value);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_result_round_trips_through_a_data_row() {
        let v = [b'V', 0, 0, 0, 11, 0, 0, 0, 3, b'a', b'b', b'c'];
        let d = as_data_row(&v).unwrap();
        assert_eq!(
            &d[..],
            &[b'D', 0, 0, 0, 13, 0, 1, 0, 0, 0, 3, b'a', b'b', b'c'][..]
        );
        assert_eq!(&from_data_row(&d)[..], &v[..]);
        let null = [b'V', 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(&from_data_row(&as_data_row(&null).unwrap())[..], &null[..]);
        assert!(as_data_row(&[b'V', 0, 0, 0, 4]).is_none());
    }
}
