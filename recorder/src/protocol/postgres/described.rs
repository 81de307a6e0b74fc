//! Which prepared statements and portals the client has described, so the gateway
//! knows when a result will arrive without a RowDescription it can plan masking from.
//!
//! A client may send Parse, Bind, Execute, Sync and never Describe: the rows then
//! arrive with no column names, types or sources, and column rules would have nothing
//! to match. Before such an Execute the gateway describes the portal upstream itself
//! and hides the answer from the client (see `Pending::Describe { hidden }`).

use super::frontend::Target;
use super::wire::Builder;
use std::collections::{HashMap, HashSet};

/// What the client has described so far in this session.
#[derive(Debug, Default)]
pub struct Described {
    statements: HashSet<String>,
    /// Portal → whether its columns are known (described itself or via its statement).
    portals: HashMap<String, bool>,
}

impl Described {
    /// A Parse (re)defines `statement`: its earlier description no longer holds.
    pub fn parsed(&mut self, statement: &str) {
        self.statements.remove(statement);
    }

    /// A Bind makes `portal` from `statement`; it is described if the statement is.
    pub fn bound(&mut self, portal: &str, statement: &str) {
        let known = self.statements.contains(statement);
        self.portals.insert(portal.to_string(), known);
    }

    /// The client sent Describe.
    pub fn described(&mut self, target: Target, name: &str) {
        match target {
            Target::Statement => {
                self.statements.insert(name.to_string());
            }
            Target::Portal => {
                self.portals.insert(name.to_string(), true);
            }
        }
    }

    /// The client closed a statement or portal.
    pub fn closed(&mut self, target: Target, name: &str) {
        match target {
            Target::Statement => {
                self.statements.remove(name);
            }
            Target::Portal => {
                self.portals.remove(name);
            }
        }
    }

    /// Whether an Execute of `portal` will have columns to plan masking from.
    pub fn portal_known(&self, portal: &str) -> bool {
        self.portals.get(portal).copied().unwrap_or(false)
    }

    /// The Describe message for the portal an Execute message (`raw`, tag included)
    /// names, as the gateway sends it on the client's behalf: the name's bytes are
    /// copied as the client sent them, in whatever encoding.
    pub fn describe_for_execute(raw: &[u8]) -> Vec<u8> {
        let body = raw.get(5..).unwrap_or_default();
        let portal = &body[..body.iter().position(|&b| b == 0).unwrap_or(body.len())];
        Self::describe_portal_message(portal)
    }

    fn describe_portal_message(portal: &[u8]) -> Vec<u8> {
        Builder::new(Some(b'D'))
            .u8(b'P')
            .cstr_bytes(portal)
            .finish()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portal_is_known_through_its_statement_until_a_new_parse() {
        let mut d = Described::default();
        d.described(Target::Statement, "s1");
        d.bound("", "s1");
        assert!(d.portal_known(""));
        d.parsed("s1");
        d.bound("", "s1");
        assert!(
            !d.portal_known(""),
            "a re-parsed statement is not described yet"
        );
        d.described(Target::Portal, "");
        assert!(d.portal_known(""));
        d.closed(Target::Portal, "");
        assert!(!d.portal_known(""));
        assert_eq!(
            Described::describe_for_execute(b"E\0\0\0\x0ap\0\0\0\0\0"),
            b"D\0\0\0\x07Pp\0"
        );
    }
}
