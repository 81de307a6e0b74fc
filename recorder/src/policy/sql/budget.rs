//! How complex a statement the policy check will parse.
//!
//! sqlparser builds `1 + 1 + … + 1` and `a AND b AND …` as trees as deep as they are
//! long, without deep recursion while parsing; but walking, printing or dropping such
//! a tree recurses once per level, and 40 000 levels overflow any ordinary stack and
//! abort the whole process. Nesting (parentheses, subqueries, NOT NOT …) is bounded by
//! the parser's recursion limit; chains of operators are bounded here, by counting
//! them before parsing: every token that can join two expressions (`+`, `||`, `::`,
//! `.`, `[`, `AND`, `IS`, …) adds at most one level. Within the budget, a statement's
//! tree is at most that deep, and the policy check runs it on a stack sized for it
//! (`deep_stack`).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The most operator tokens a statement the policy check parses may have.
pub const MAX_OPERATORS: usize = 100_000;

/// The deepest nesting of function calls, brackets and `NOT (` (`f(g(h(…)))`,
/// `ARRAY[ARRAY[…`, `NOT (NOT (…`) the policy check parses: sqlparser's time doubles
/// or more with each level (a 100-byte statement 30 calls deep would hold a thread
/// for hours, 14 `NOT (` took 12 s), so deeper ones are too complex to check.
pub const MAX_CALL_DEPTH: usize = 10;

/// The deepest nesting of parentheses and brackets of any kind the policy check
/// parses: at each `(` sqlparser tries a subquery, a nested join and an expression,
/// so on a text it cannot parse its time multiplies with every level (found by
/// fuzzing: 224 bytes of `((((NOT((((…` held a thread for 3 minutes).
pub const MAX_NESTING: usize = 16;

/// The most parts of one dotted name (`a.b.c.d`) the policy check parses: before a
/// subscript sqlparser backtracks through every part, doubling its time per part (24
/// parts held a thread for 15 s). PostgreSQL's own names have at most four parts;
/// field selections add a few.
pub const MAX_NAME_PARTS: usize = 10;

/// Statements longer than this are not tokenized a second time to count exactly;
/// their rough count (which overcounts) must fit the budget on its own.
pub const MAX_COUNTED_BYTES: usize = 8 << 20;

/// Texts up to this size are parsed where they are: they cannot hold more than this
/// many operators, so their trees are shallow enough for any task's stack.
pub const SHALLOW_BYTES: usize = 1024;

/// Why a statement is over the budget, in words for the client.
pub fn check(text: &str) -> Result<(), String> {
    if text.len() <= SHALLOW_BYTES {
        return Ok(());
    }
    if rough_count(text) <= MAX_OPERATORS {
        return Ok(());
    }
    if text.len() > MAX_COUNTED_BYTES {
        return Err(format!(
            "it is {} bytes with up to {} operators; the policy check reads at most {MAX_OPERATORS} operators in a statement over {} MiB",
            text.len(),
            rough_count(text),
            MAX_COUNTED_BYTES >> 20
        ));
    }
    let exact = exact_count(text);
    if exact <= MAX_OPERATORS {
        Ok(())
    } else {
        Err(format!(
            "it chains {exact} operators; the policy check reads at most {MAX_OPERATORS}"
        ))
    }
}

/// An upper bound on the operator tokens: every operator character and every word
/// (a word may be `AND`, `OR`, `IS` …), wherever they stand, strings and comments
/// included. Never less than the exact count.
pub fn rough_count(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for b in text.bytes() {
        let word_byte = b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        if word_byte {
            if !in_word {
                n += 1;
            }
            in_word = true;
            continue;
        }
        in_word = false;
        if b"+-*/%^|&<>=~!#@:.[?".contains(&b) {
            n += 1;
        }
    }
    n
}

/// The operator tokens sqlparser's own tokenizer sees (0 when it cannot tokenize:
/// the parse then fails on its own).
pub fn exact_count(text: &str) -> usize {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, text).tokenize() else {
        return 0;
    };
    tokens.iter().filter(|t| joins_expressions(t)).count()
}

/// Whether a token can join two expressions into a deeper one.
fn joins_expressions(t: &Token) -> bool {
    match t {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::IN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::OVERLAPS
                | Keyword::ESCAPE
                | Keyword::ANY
                | Keyword::ALL
                | Keyword::SOME
                | Keyword::OPERATOR
        ),
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Whitespace(_)
        | Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::SemiColon
        | Token::Placeholder(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_statements_are_well_within_the_budget() {
        assert_eq!(check("SELECT 1"), Ok(()));
        let long_in = format!(
            "SELECT * FROM t WHERE id IN ({})",
            (0..50_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(check(&long_in), Ok(()), "a long flat list is not deep");
        let literal = format!("INSERT INTO docs VALUES ('{}')", "a b+c ".repeat(200_000));
        assert_eq!(
            check(&literal),
            Ok(()),
            "operators inside a string do not count"
        );
    }

    #[test]
    fn long_operator_chains_are_over_the_budget() {
        let sum = format!("SELECT 1{}", " + 1".repeat(MAX_OPERATORS + 1));
        assert!(check(&sum).unwrap_err().contains("operators"));
        let ands = format!("SELECT 1 WHERE {}", "a = 1 AND ".repeat(60_000) + "true");
        assert!(check(&ands).is_err());
        assert!(rough_count(&sum) >= exact_count(&sum));
    }
}
