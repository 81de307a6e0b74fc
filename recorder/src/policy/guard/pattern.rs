//! Deny by pattern: a regular expression over the statement text as the client sent
//! it. The last resort for what a parse tree cannot see (a DROP inside a DO block's
//! string, a function known to be dangerous).

use regex::Regex;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern(Regex);

impl Pattern {
    /// Compiles the config's pattern; the error says where it is malformed.
    pub fn new(text: &str) -> Result<Self, String> {
        Regex::new(text).map(Pattern).map_err(|e| e.to_string())
    }

    /// Whether the text matches anywhere.
    pub fn matches(&self, sql: &str) -> bool {
        self.0.is_match(sql)
    }
}
