//! What goes upstream in place of a statement the gateway refuses.
//!
//! PostgreSQL aborts a transaction block on any error, and every client library
//! assumes it did. A refused statement therefore must not just vanish: the upstream
//! gets a statement that fails at once, at parse time, with no other effect (a syntax
//! error names no table and runs nothing), and the client gets the gateway's error in
//! place of the upstream's. The transaction status the client then sees (`E` inside a
//! block, `I` outside one) and the answers to its next statements are PostgreSQL's own.

use super::wire::Builder;
use bytes::Bytes;

/// The text the upstream is sent; a syntax error under every setting.
pub const REFUSAL_SQL: &str = "TAPLINE REFUSED THIS STATEMENT";

/// The statement name an extended-protocol refusal is parsed under: a Parse that
/// fails creates no statement, and a named one (unlike the unnamed one) does not drop
/// the client's unnamed statement on the way.
pub const REFUSAL_STATEMENT: &str = "tapline_refused";

/// A simple Query that fails at once.
pub fn refusal_query() -> Bytes {
    Builder::new(Some(b'Q')).cstr(REFUSAL_SQL).finish()
}

/// A Parse that fails at once; the upstream then skips to the client's Sync, as it
/// would after the refused statement's own error.
pub fn refusal_parse() -> Bytes {
    Builder::new(Some(b'P'))
        .cstr(REFUSAL_STATEMENT)
        .cstr(REFUSAL_SQL)
        .i16(0)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::postgres::encoding::UTF8;
    use crate::protocol::postgres::frontend::FrontendMessage;

    #[test]
    fn the_substitutes_are_well_formed_messages() {
        let q = refusal_query();
        assert_eq!(
            FrontendMessage::parse(b'Q', &q[5..], UTF8).unwrap(),
            FrontendMessage::Query {
                sql: REFUSAL_SQL.into()
            }
        );
        let p = refusal_parse();
        assert!(matches!(
            FrontendMessage::parse(b'P', &p[5..], UTF8).unwrap(),
            FrontendMessage::Parse { statement, .. } if statement == REFUSAL_STATEMENT
        ));
    }
}
