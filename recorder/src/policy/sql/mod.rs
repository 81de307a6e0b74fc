//! SQL text as the policy checks see it, parsed at most once: the deny rules, the
//! approval rules and a session approval's shape all read the same parse.
//!
//! The text is read the way the server will read it (`lexer`): under the session's
//! `standard_conforming_strings`, with every escape form decoded, and the canonical
//! text that results is what sqlparser parses. When the setting could change between
//! the check and the server's reading (a `SET` pipelined ahead of the statement, a
//! function that calls `set_config`), a text whose strings read differently under the
//! other setting is read both ways, and the checks hold for both readings.
//!
//! A statement is parsed only within a budget (`budget`: operator chains bounded before
//! parsing, nesting bounded by the parser's recursion limit), and a statement too
//! large to be sure of a shallow tree is parsed, walked and dropped on a thread with a
//! deep stack (`deep_stack`): no statement can overflow a session task's stack and take
//! the gateway down with it.
//!
//! - `lexer`: PostgreSQL's lexical rules and the canonical text;
//! - `budget`: how complex a statement the check will read;
//! - `deep_stack`: the threads the long ones are checked on.

pub mod budget;
pub mod deep_stack;
pub mod lexer;

use lexer::{Lexed, Settings};
use sqlparser::ast::Statement;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use std::cell::OnceCell;

/// How deeply a statement may nest (parentheses, subqueries, CASE, NOT …) for the
/// policy check to read it.
pub const RECURSION_LIMIT: usize = 200;

/// Why a text has no parse the policy check can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    /// It is not SQL sqlparser reads.
    Syntax(String),
    /// It is too deep or too long to check safely (SQLSTATE 54001).
    TooComplex(String),
    /// The gateway cannot be sure how the server reads it (an unterminated string,
    /// an invalid escape, or sqlparser and the server seeing different statements).
    Unsure(String),
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseFailure::Syntax(e) => write!(f, "{e}"),
            ParseFailure::TooComplex(why) => {
                write!(f, "statement too complex for the policy check: {why}")
            }
            ParseFailure::Unsure(why) => {
                write!(f, "cannot be sure how PostgreSQL reads it: {why}")
            }
        }
    }
}

/// One way the server may read a text.
#[derive(Debug)]
pub struct Reading {
    /// The setting it was read under.
    pub settings: Settings,
    /// The text as the server's lexer sees it.
    pub lexed: Lexed,
    /// Its statements, or why there are none to check.
    pub parsed: Result<Vec<Statement>, ParseFailure>,
}

/// SQL text and its readings, made on first use.
pub struct Sql<'a> {
    text: &'a str,
    settings: Settings,
    readings: OnceCell<Vec<Reading>>,
}

impl<'a> Sql<'a> {
    /// Wraps a text read under the default settings; nothing is parsed yet. A text
    /// longer than [`budget::SHALLOW_BYTES`] must be handled through
    /// [`on_right_stack`] (or on a deep-stack thread), since its tree may be deep.
    pub fn new(text: &'a str) -> Self {
        Self::with_settings(text, Settings::default())
    }

    /// Wraps a text the session will have read under `settings`.
    pub fn with_settings(text: &'a str, settings: Settings) -> Self {
        Sql {
            text,
            settings,
            readings: OnceCell::new(),
        }
    }

    /// The text as the client sent it.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Every reading the checks must hold for: the session's own first, then, when
    /// the text holds a backslash, the ones that differ from it with
    /// `standard_conforming_strings` flipped and (when a backslash follows a
    /// non-ASCII character) with `ascii_trail_bytes`: a `SET` of either pipelined
    /// ahead of the statement cannot make the server read what the check did not.
    pub fn readings(&self) -> &[Reading] {
        self.readings.get_or_init(|| {
            let mut out = vec![read(self.text, self.settings)];
            if !self.text.contains('\\') {
                return out;
            }
            let mut alternatives = vec![Settings {
                standard_conforming_strings: !self.settings.standard_conforming_strings,
                ..self.settings
            }];
            if !self.settings.ascii_trail_bytes && Settings::trail_sensitive(self.text) {
                let trail: Vec<Settings> = [self.settings, alternatives[0]]
                    .iter()
                    .map(|s| Settings {
                        ascii_trail_bytes: true,
                        ..*s
                    })
                    .collect();
                alternatives.extend(trail);
            }
            for settings in alternatives {
                let alt = read(self.text, settings);
                if out.iter().all(|r| r.lexed.text != alt.lexed.text) {
                    out.push(alt);
                }
            }
            out
        })
    }

    /// The statements of the session's own reading, or why there are none.
    pub fn statements(&self) -> Result<&[Statement], &ParseFailure> {
        self.readings()[0].parsed.as_deref()
    }
}

/// Reads SQL found inside a statement (a function body, a `dblink_exec` text) under
/// the settings the statement was read with.
pub(crate) fn read_nested(text: &str, settings: Settings) -> Reading {
    read(text, settings)
}

/// Reads `text` under `settings`, and parses the canonical text within the budget.
fn read(text: &str, settings: Settings) -> Reading {
    let lexed = lexer::lex(text, settings);
    let parsed = match &lexed.doubt {
        Some(why) => Err(ParseFailure::Unsure(why.clone())),
        None if lexed.max_call_depth > budget::MAX_CALL_DEPTH => {
            Err(ParseFailure::TooComplex(format!(
                "it nests function calls, brackets and NOT ( {} deep; the policy check reads at most {}",
                lexed.max_call_depth,
                budget::MAX_CALL_DEPTH
            )))
        }
        None if lexed.max_depth > budget::MAX_NESTING => Err(ParseFailure::TooComplex(format!(
            "it nests parentheses {} deep; the policy check reads at most {}",
            lexed.max_depth,
            budget::MAX_NESTING
        ))),
        None if lexed.max_name_parts > budget::MAX_NAME_PARTS => {
            Err(ParseFailure::TooComplex(format!(
                "it has a name of {} dotted parts; the policy check reads at most {}",
                lexed.max_name_parts,
                budget::MAX_NAME_PARTS
            )))
        }
        None => parse(&lexed.text).and_then(|stmts| {
            if stmts.len() == lexed.statements {
                Ok(stmts)
            } else {
                Err(ParseFailure::Unsure(format!(
                    "PostgreSQL reads {} statement(s) here and the policy parser {}",
                    lexed.statements,
                    stmts.len()
                )))
            }
        }),
    };
    Reading {
        settings,
        lexed,
        parsed,
    }
}

/// Parses within the budget.
fn parse(text: &str) -> Result<Vec<Statement>, ParseFailure> {
    budget::check(text).map_err(ParseFailure::TooComplex)?;
    Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => ParseFailure::TooComplex(format!(
                "it nests more than {RECURSION_LIMIT} levels deep"
            )),
            other => ParseFailure::Syntax(other.to_string()),
        })
}

/// Whether a text's checks may run where the caller is (a small text), or must run on
/// a deep-stack thread.
pub fn is_shallow(text: &str) -> bool {
    text.len() <= budget::SHALLOW_BYTES
}

/// Runs `check` over the parse of `text` where it is safe to: in place for a small
/// text, on a deep-stack thread for a long one. The parse is made, used and dropped
/// there; `check` returns owned results. A check that panics on a long text gives
/// `on_panic`'s result instead.
pub async fn on_right_stack<T: Send + 'static>(
    text: &str,
    settings: Settings,
    check: impl FnOnce(&Sql<'_>) -> T + Send + 'static,
    on_panic: impl FnOnce() -> T,
) -> T {
    if is_shallow(text) {
        return check(&Sql::with_settings(text, settings));
    }
    let owned = text.to_string();
    deep_stack::run(move || check(&Sql::with_settings(&owned, settings)))
        .await
        .unwrap_or_else(|_| on_panic())
}

/// [`on_right_stack`] for synchronous code (blocks the thread while a long text is
/// checked).
pub fn on_right_stack_blocking<T: Send + 'static>(
    text: &str,
    settings: Settings,
    check: impl FnOnce(&Sql<'_>) -> T + Send + 'static,
    on_panic: impl FnOnce() -> T,
) -> T {
    if is_shallow(text) {
        return check(&Sql::with_settings(text, settings));
    }
    let owned = text.to_string();
    deep_stack::run_blocking(move || check(&Sql::with_settings(&owned, settings)))
        .unwrap_or_else(|_| on_panic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::Visit;
    use std::ops::ControlFlow;

    struct CountExprs(usize);

    impl sqlparser::ast::Visitor for CountExprs {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &sqlparser::ast::Expr) -> ControlFlow<()> {
            self.0 += 1;
            ControlFlow::Continue(())
        }
    }

    /// Parses, walks, prints and drops a long statement the way a check does.
    fn walk_print_drop(text: String) -> Result<usize, ParseFailure> {
        let sql = Sql::new(&text);
        let n = match sql.statements() {
            Ok(stmts) => {
                let mut v = CountExprs(0);
                for s in stmts {
                    let _ = s.visit(&mut v);
                }
                let printed: usize = stmts.iter().map(|s| s.to_string().len()).sum();
                assert!(printed > 0);
                v.0
            }
            Err(e) => return Err(e.clone()),
        };
        drop(sql);
        Ok(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_40000_term_expression_is_parsed_walked_and_dropped_on_the_deep_stack() {
        let sum = format!("SELECT 1{}", " + 1".repeat(40_000));
        let n = on_right_stack(
            &sum,
            Settings::default(),
            |sql| walk_print_drop(sql.text().to_string()),
            || Err(ParseFailure::TooComplex("panicked".into())),
        )
        .await
        .expect("within the budget");
        assert!(n >= 80_000, "every term is an expression: {n}");
        let ands = format!("SELECT 1 WHERE {} true", "x = 1 AND ".repeat(40_000));
        let n = on_right_stack(
            &ands,
            Settings::default(),
            |sql| walk_print_drop(sql.text().to_string()),
            || Err(ParseFailure::TooComplex("panicked".into())),
        )
        .await
        .expect("within the budget");
        assert!(n >= 80_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statements_beyond_the_budget_or_the_nesting_limit_are_too_complex() {
        let sum = format!("SELECT 1{}", " + 1".repeat(budget::MAX_OPERATORS + 10));
        let r = on_right_stack(
            &sum,
            Settings::default(),
            |sql| walk_print_drop(sql.text().to_string()),
            || Err(ParseFailure::TooComplex("panicked".into())),
        )
        .await;
        assert!(matches!(r, Err(ParseFailure::TooComplex(_))), "{r:?}");
        let nested = format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000));
        let r = on_right_stack(
            &nested,
            Settings::default(),
            |sql| walk_print_drop(sql.text().to_string()),
            || Err(ParseFailure::TooComplex("panicked".into())),
        )
        .await;
        assert!(matches!(r, Err(ParseFailure::TooComplex(_))), "{r:?}");
        // sqlparser stops a chain of prefix operators at the same limit (it reports it
        // as a syntax error): refused either way, never walked.
        let nots = format!("SELECT {} true", "NOT ".repeat(3_000));
        let r = on_right_stack(
            &nots,
            Settings::default(),
            |sql| walk_print_drop(sql.text().to_string()),
            || Err(ParseFailure::TooComplex("panicked".into())),
        )
        .await;
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn deeply_nested_calls_are_too_complex_before_they_are_parsed() {
        // 30 nested calls would take sqlparser hours; refused at once.
        let deep = format!("SELECT {}1{}", "f(1, ".repeat(30), ")".repeat(30));
        let sql = Sql::new(&deep);
        assert!(
            matches!(sql.statements(), Err(ParseFailure::TooComplex(why)) if why.contains("30 deep"))
        );
        let arrays = format!("SELECT {}y", "ARRAY[".repeat(30));
        assert!(matches!(
            Sql::new(&arrays).statements(),
            Err(ParseFailure::TooComplex(_))
        ));
        let fine = format!(
            "SELECT {}1{}",
            "f(".repeat(budget::MAX_CALL_DEPTH),
            ")".repeat(budget::MAX_CALL_DEPTH)
        );
        assert!(Sql::new(&fine).statements().is_ok());
    }

    #[test]
    fn long_dotted_names_are_too_complex_before_they_are_parsed() {
        // Found by fuzzing: before an unclosed subscript sqlparser's time doubles
        // with every part of a dotted name (24 parts took 15 s).
        let parts: Vec<String> = (0..30).map(|i| format!("x{i}")).collect();
        let long = format!("SELECT {}[", parts.join("."));
        assert!(matches!(
            Sql::new(&long).statements(),
            Err(ParseFailure::TooComplex(why)) if why.contains("30 dotted parts")
        ));
        let usual = "SELECT db.sch.tbl.col, (t).f.g[1] FROM sch.tbl t";
        // And parentheses of any kind, past the depth real statements use.
        let nots = format!("SELECT {}x FRO", "(NOT ".repeat(14));
        assert!(matches!(
            Sql::new(&nots).statements(),
            Err(ParseFailure::TooComplex(_))
        ));
        let parens = format!("SELECT {}1{}", "(".repeat(20), ")".repeat(20));
        assert!(matches!(
            Sql::new(&parens).statements(),
            Err(ParseFailure::TooComplex(why)) if why.contains("20 deep")
        ));
        let nested = format!("SELECT {}1{}", "(".repeat(16), ")".repeat(16));
        assert!(Sql::new(&nested).statements().is_ok());
        assert!(Sql::new(usual).statements().is_ok());
    }

    #[test]
    fn the_largest_shallow_text_is_safe_on_an_ordinary_stack() {
        // The worst a text of SHALLOW_BYTES can do, checked on a 2 MiB thread (what a
        // tokio worker has).
        let worst = format!("SELECT 1{}", "+1".repeat((budget::SHALLOW_BYTES - 8) / 2));
        assert!(is_shallow(&worst));
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || walk_print_drop(worst))
            .unwrap();
        assert!(handle.join().unwrap().is_ok());
    }
}
