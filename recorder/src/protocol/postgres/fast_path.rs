//! The fast-path FunctionCall message ('F'): a function called by OID, with no SQL
//! text for a rule to read. Where any deny or approval rule applies to a session, a
//! call is refused (42501) unless the policy's `allow_fast_path` names the function;
//! libpq's large-object functions (`lo_open`, `loread`, …) are the usual ones to list.
//! The names are resolved to OIDs once, on the idle upstream before the client's
//! first command, so a call is recorded under its function's signature.

use super::idle_query;
use super::wire::Reader;
use crate::policy::guard::{Denial, REFUSED_SQLSTATE};
use crate::protocol::postgres::encoding::PgEncoding;
use bytes::BytesMut;
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncWrite};

/// One session's view of fast-path calls.
#[derive(Debug, Clone, Default)]
pub struct FastPath {
    /// Whether calls are refused unless allowed (a rule applies to the session).
    pub guarded: bool,
    /// The allowed functions: OID → signature (`lo_open(oid,integer)`).
    pub allowed: HashMap<u32, String>,
}

impl FastPath {
    /// What a call of `oid` is recorded as, and whether it is refused.
    pub fn judge(&self, oid: u32) -> (String, Option<Denial>) {
        let command = match self.allowed.get(&oid) {
            Some(name) => format!("<fast-path call of {name}, oid {oid}>"),
            None => format!("<fast-path call of function oid {oid}>"),
        };
        let denial = (self.guarded && !self.allowed.contains_key(&oid)).then(|| Denial {
            rule: "fast_path".into(),
            message: format!(
                "fast-path function calls are refused on this connection (function oid {oid}); call the function in SQL, or ask for it to be listed in allow_fast_path"
            ),
            matched: "fast-path function call".into(),
            sqlstate: REFUSED_SQLSTATE,
        });
        (command, denial)
    }
}

/// The query that resolves `names` (function names, optionally schema-qualified).
pub fn lookup_sql(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    format!(
        "SELECT p.oid::int8, p.oid::regprocedure::text FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.proname = ANY(ARRAY[{list}]::text[]) OR (n.nspname || '.' || p.proname) = ANY(ARRAY[{list}]::text[])",
        list = quoted.join(", ")
    )
}

/// Resolves the allowed names on a logged-in, idle upstream connection.
pub async fn lookup<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    leftover: &mut BytesMut,
    names: &[String],
    limit: usize,
    encoding: PgEncoding,
) -> Result<HashMap<u32, String>, String> {
    let mut out = HashMap::new();
    let sql = lookup_sql(names);
    idle_query::run(
        stream,
        leftover,
        &sql,
        limit,
        encoding,
        "fast-path lookup",
        |body| {
            let mut r = Reader::new(b'D', body);
            let row = (|| {
                if r.i16().ok()? != 2 {
                    return None;
                }
                let oid = encoding.decode(r.value().ok()??).parse::<u32>().ok()?;
                let name = encoding.decode(r.value().ok()??).into_owned();
                Some((oid, name))
            })();
            let (oid, name) = row.ok_or("a malformed fast-path lookup row")?;
            out.insert(oid, name);
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_refused_under_rules_unless_allowed() {
        let mut fp = FastPath {
            guarded: true,
            allowed: HashMap::from([(952, "lo_open(oid,integer)".to_string())]),
        };
        let (cmd, d) = fp.judge(952);
        assert_eq!(cmd, "<fast-path call of lo_open(oid,integer), oid 952>");
        assert!(d.is_none());
        let (cmd, d) = fp.judge(1);
        assert_eq!(cmd, "<fast-path call of function oid 1>");
        assert_eq!(d.unwrap().sqlstate, "42501");
        fp.guarded = false;
        assert!(fp.judge(1).1.is_none());
        assert!(lookup_sql(&["it's".into()]).contains("'it''s'"));
    }
}
