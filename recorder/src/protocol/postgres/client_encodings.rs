//! Which client encodings a session under rules may use (`[policy] client_encodings`).
//!
//! The policy check reads every text the ways the server might (see
//! `policy::sql::lexer`), so no encoding is unsafe to it. Still, a team may want its
//! agents to speak only the encodings it expects: then a session under any deny or
//! approval rule that logs in with, or switches to, another encoding ends with
//! `FATAL 22023` as soon as the server reports it, naming the allowed ones.

use super::encoding::PgEncoding;

/// The encodings one session may use.
#[derive(Debug, Clone, Default)]
pub struct ClientEncodings {
    /// Canonical names; empty: any.
    pub allowed: Vec<String>,
    /// Whether a rule applies to the session (else the list does not).
    pub guarded: bool,
}

impl ClientEncodings {
    /// Why the reported `name` is refused, if it is.
    pub fn refuses(&self, name: &str) -> Option<String> {
        if !self.guarded || self.allowed.is_empty() {
            return None;
        }
        let canonical = PgEncoding::by_name(name).map(|e| e.name).unwrap_or(name);
        (!self.allowed.iter().any(|a| a.eq_ignore_ascii_case(canonical))).then(|| {
            format!(
                "client_encoding {name} is not allowed on this connection (allowed: {}); reconnect with one of them",
                self.allowed.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_encodings_are_allowed_under_rules() {
        let c = ClientEncodings {
            allowed: vec!["UTF8".into(), "LATIN1".into()],
            guarded: true,
        };
        assert!(c.refuses("UTF8").is_none());
        assert!(c.refuses("ISO88591").is_none(), "an alias of LATIN1");
        assert!(c.refuses("SJIS").unwrap().contains("allowed: UTF8, LATIN1"));
        let open = ClientEncodings {
            guarded: false,
            ..c.clone()
        };
        assert!(open.refuses("SJIS").is_none());
    }
}
