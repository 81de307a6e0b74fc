//! A statement text as the policy checks see it, parsed at most once: the deny
//! rules, the approval rules and a session approval's shape all read the same parse.

use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::cell::OnceCell;

/// SQL text and its parse, made on first use.
pub struct Sql<'a> {
    text: &'a str,
    parsed: OnceCell<Result<Vec<Statement>, String>>,
}

impl<'a> Sql<'a> {
    /// Wraps a text; nothing is parsed yet.
    pub fn new(text: &'a str) -> Self {
        Sql {
            text,
            parsed: OnceCell::new(),
        }
    }

    /// The text as the client sent it.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The statements, or why the text does not parse.
    pub fn statements(&self) -> Result<&[Statement], &str> {
        self.parsed
            .get_or_init(|| {
                Parser::parse_sql(&PostgreSqlDialect {}, self.text).map_err(|e| e.to_string())
            })
            .as_deref()
            .map_err(String::as_str)
    }
}
