//! Which columns a masking rule covers: a glob on the column name (`*card*`,
//! `ssn`), optionally qualified by a table (`customers.ssn`) or a schema and a table
//! (`sales.customers.ssn`). Names compare without regard to ASCII case, as unquoted
//! SQL identifiers do.

/// One column pattern of a masking rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPattern {
    /// `schema` of `schema.table.column`, if given.
    pub schema: Option<String>,
    /// `table` of `table.column`, if given.
    pub table: Option<String>,
    /// The glob on the column name.
    pub column: String,
}

/// The table a column was read from, when the protocol can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableName<'a> {
    pub schema: &'a str,
    pub table: &'a str,
}

impl ColumnPattern {
    /// Parses `column`, `table.column` or `schema.table.column`; the error says what
    /// is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "`{text}` has an empty part; write `column`, `table.column` or `schema.table.column`"
            ));
        }
        let (schema, table, column) = match parts.as_slice() {
            [c] => (None, None, *c),
            [t, c] => (None, Some(*t), *c),
            [s, t, c] => (Some(*s), Some(*t), *c),
            _ => {
                return Err(format!(
                    "`{text}` has too many dots; write `column`, `table.column` or `schema.table.column`"
                ));
            }
        };
        if schema.is_some_and(|s| s.contains(['*', '?']))
            || table.is_some_and(|t| t.contains(['*', '?']))
        {
            return Err(format!(
                "`{text}`: only the column part may be a glob; name the table exactly"
            ));
        }
        Ok(ColumnPattern {
            schema: schema.map(str::to_ascii_lowercase),
            table: table.map(str::to_ascii_lowercase),
            column: column.to_ascii_lowercase(),
        })
    }

    /// Whether the pattern names a table (then only columns of that table match).
    pub fn is_qualified(&self) -> bool {
        self.table.is_some()
    }

    /// Whether a column named `column`, read from `table` (if known), is covered.
    /// An unqualified pattern covers a column of that name wherever it comes from.
    pub fn matches(&self, table: Option<TableName<'_>>, column: &str) -> bool {
        if let Some(want) = &self.table {
            let Some(t) = table else { return false };
            if !t.table.eq_ignore_ascii_case(want) {
                return false;
            }
            if let Some(s) = &self.schema
                && !t.schema.eq_ignore_ascii_case(s)
            {
                return false;
            }
        }
        glob_matches(&self.column, column)
    }

    /// Whether the column part alone matches: used where the table cannot be told,
    /// so a qualified rule errs on the side of masking.
    pub fn matches_column(&self, column: &str) -> bool {
        glob_matches(&self.column, column)
    }

    /// Whether a column named in SQL text is covered: `schema` when the text gives
    /// one (when it does not, any schema may be meant, so a rule's schema does not
    /// rule it out).
    pub fn matches_named(&self, schema: Option<&str>, table: &str, column: &str) -> bool {
        if let Some(want) = &self.table {
            if !table.eq_ignore_ascii_case(want) {
                return false;
            }
            if let (Some(want), Some(s)) = (&self.schema, schema)
                && !s.eq_ignore_ascii_case(want)
            {
                return false;
            }
        }
        glob_matches(&self.column, column)
    }

    /// Whether the pattern names `table` (in `schema`, when the text gives one).
    pub fn names_table(&self, schema: Option<&str>, table: &str) -> bool {
        self.table
            .as_ref()
            .is_some_and(|t| t.eq_ignore_ascii_case(table))
            && match (&self.schema, schema) {
                (Some(want), Some(s)) => s.eq_ignore_ascii_case(want),
                _ => true,
            }
    }

    /// The column glob as an anchored POSIX regular expression, for a catalog query.
    pub fn column_regex(&self) -> String {
        let mut out = String::from("^");
        for c in self.column.chars() {
            match c {
                '*' => out.push_str(".*"),
                '?' => out.push('.'),
                c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
                c => {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
        out.push('$');
        out
    }
}

/// `*` any run of characters, `?` one character; ASCII case is ignored.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi].eq_ignore_ascii_case(&t[ti])) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_column_names_case_blind() {
        assert!(glob_matches("*card*", "credit_card_number"));
        assert!(glob_matches("ssn", "SSN"));
        assert!(glob_matches("e?ail", "email"));
        assert!(!glob_matches("ssn", "ssn2"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*b", "acd"));
    }

    #[test]
    fn qualified_patterns_need_their_table() {
        let p = ColumnPattern::parse("Customers.ssn").unwrap();
        let customers = TableName {
            schema: "public",
            table: "customers",
        };
        let staff = TableName {
            schema: "public",
            table: "staff",
        };
        assert!(p.matches(Some(customers), "ssn"));
        assert!(!p.matches(Some(staff), "ssn"));
        assert!(!p.matches(None, "ssn"), "a computed column has no table");
        assert!(p.matches_column("ssn"));
        let s = ColumnPattern::parse("sales.customers.ssn").unwrap();
        assert!(!s.matches(Some(customers), "ssn"), "other schema");
        let any = ColumnPattern::parse("*ssn*").unwrap();
        assert!(any.matches(None, "ssn_last"));
        assert!(any.matches(Some(staff), "my_ssn"));
    }

    #[test]
    fn bad_patterns_say_what_to_write() {
        assert!(
            ColumnPattern::parse("a..b")
                .unwrap_err()
                .contains("empty part")
        );
        assert!(
            ColumnPattern::parse("a.b.c.d")
                .unwrap_err()
                .contains("too many")
        );
        assert!(
            ColumnPattern::parse("cust*.ssn")
                .unwrap_err()
                .contains("only the column")
        );
    }

    #[test]
    fn globs_become_catalog_regexes() {
        let p = ColumnPattern::parse("*card_no?").unwrap();
        assert_eq!(p.column_regex(), "^.*card_no.$");
        assert_eq!(
            ColumnPattern::parse("a-b").unwrap().column_regex(),
            "^a\\-b$"
        );
    }
}
