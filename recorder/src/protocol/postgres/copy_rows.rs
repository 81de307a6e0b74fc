//! COPY FROM STDIN data is recorded in chunks; a chunk ends after a whole row, so no
//! value is split between two events, where masking could not see it whole.

use super::frame::peek_message_len;
use super::wire::Builder;
use bytes::BytesMut;

/// Splits buffered CopyData messages after the last newline in their data: the
/// messages up to it (the one holding it cut there), and the rest as CopyData. `None`
/// when there is no newline (one row longer than a chunk).
pub fn split_after_last_row(copy: &[u8]) -> Option<(BytesMut, BytesMut)> {
    let mut at = 0;
    let mut cut = None;
    while let Ok(Some(len)) = peek_message_len(&copy[at..], usize::MAX) {
        if let Some(nl) = copy[at + 5..at + len].iter().rposition(|&b| b == b'\n') {
            cut = Some((at, len, nl));
        }
        at += len;
    }
    let (start, len, nl) = cut?;
    let data = &copy[start + 5..start + len];
    let mut head = BytesMut::from(&copy[..start]);
    head.extend_from_slice(&copy_data(&data[..=nl]));
    let mut tail = BytesMut::new();
    if nl + 1 < data.len() {
        tail.extend_from_slice(&copy_data(&data[nl + 1..]));
    }
    tail.extend_from_slice(&copy[start + len..]);
    Some((head, tail))
}

/// One CopyData message holding `data`.
pub fn copy_data(data: &[u8]) -> bytes::Bytes {
    Builder::with_capacity(Some(b'd'), data.len() + 5)
        .raw(data)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_ends_after_its_last_whole_row() {
        let mut copy = BytesMut::new();
        copy.extend_from_slice(&copy_data(b"1\ta\n2\t41111"));
        copy.extend_from_slice(&copy_data(b"11\n3\tc"));
        let (head, tail) = split_after_last_row(&copy).unwrap();
        let mut want = copy_data(b"1\ta\n2\t41111").to_vec();
        want.extend_from_slice(&copy_data(b"11\n"));
        assert_eq!(&head[..], &want[..]);
        assert_eq!(&tail[..], &copy_data(b"3\tc")[..]);
        assert!(split_after_last_row(&copy_data(b"no newline")).is_none());
    }
}
