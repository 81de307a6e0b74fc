//! PostgreSQL's own lexical rules, so the policy check reads a statement the way the
//! server will.
//!
//! sqlparser's tokenizer is close to PostgreSQL's, but not the same, and a caller who
//! finds a difference can hide a statement inside what the check takes for a string:
//! `SELECT '\''; DROP TABLE t; --'` is one string to a parser that ignores
//! `standard_conforming_strings = off`, and two statements to the server. So the
//! check does not hand the client's text to sqlparser. This lexer, which follows the
//! server's scanner (scan.l) and the session's settings, decides where every string,
//! quoted identifier, comment and statement begins and ends, decodes every escape
//! form (`E'…'`, backslashes under `standard_conforming_strings = off`, `U&'…'` and
//! `U&"…"` with `UESCAPE`, dollar quotes), and writes a canonical text: comments
//! become spaces, every string becomes a plain standard-conforming `'…'` and every
//! quoted identifier a plain `"…"`. sqlparser reads that text, which leaves it
//! nothing to read differently, and its statement count is checked against this
//! lexer's.
//!
//! The canonical text is also what pattern rules see besides the raw text, so
//! `U&"pg\005fsleep"` meets a `pg_sleep` pattern as `"pg_sleep"`.

/// The session settings that change how the server reads a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whether backslashes in `'…'` are literal (on, the default since PostgreSQL
    /// 9.1) or escapes (off), as the server last reported it.
    pub standard_conforming_strings: bool,
    /// Read a backslash right after a non-ASCII character (or after a byte the
    /// session's encoding could not decode, shown as `\xHH`) as that character's
    /// second byte, not an escape: how the server reads it when the text is in SJIS,
    /// BIG5, GBK, GB18030 or UHC, whose two-byte characters may end in 0x5C. The
    /// check reads a text this way too when the encoding may have changed under it.
    pub ascii_trail_bytes: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            standard_conforming_strings: true,
            ascii_trail_bytes: false,
        }
    }
}

impl Settings {
    /// Whether `text` reads differently with `ascii_trail_bytes`: a backslash follows
    /// a non-ASCII character or an undecodable-byte marker.
    pub fn trail_sensitive(text: &str) -> bool {
        let b = text.as_bytes();
        (1..b.len()).any(|i| b[i] == b'\\' && (b[i - 1] >= 0x80 || is_marker_before(b, i)))
    }
}

/// Whether `b[..i]` ends in an undecodable-byte marker `\xHH` (HH from 80 to FF).
fn is_marker_before(b: &[u8], i: usize) -> bool {
    i >= 4
        && b[i - 4] == b'\\'
        && b[i - 3] == b'x'
        && matches!(b[i - 2], b'8'..=b'9' | b'A'..=b'F')
        && matches!(b[i - 1], b'0'..=b'9' | b'A'..=b'F')
}

/// The settings of one session as the server last reported them (ParameterStatus),
/// shared by its two pumps: the backend pump sets them, the policy check reads them.
#[derive(Debug)]
pub struct LiveSettings {
    standard_conforming_strings: std::sync::atomic::AtomicBool,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            standard_conforming_strings: std::sync::atomic::AtomicBool::new(true),
        }
    }
}

impl LiveSettings {
    /// The settings now.
    pub fn get(&self) -> Settings {
        Settings {
            standard_conforming_strings: self
                .standard_conforming_strings
                .load(std::sync::atomic::Ordering::Acquire),
            ..Settings::default()
        }
    }

    /// Takes a reported setting; others are ignored.
    pub fn report(&self, name: &str, value: &str) {
        if name == "standard_conforming_strings" {
            self.standard_conforming_strings
                .store(value != "off", std::sync::atomic::Ordering::Release);
        }
    }
}

/// The words of one statement, for checks that must hold even where sqlparser cannot
/// parse it (`CREATE RULE`, `DO`, syntax it does not know).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Words {
    /// Every unquoted word (keyword or identifier), upper-cased, in order.
    pub words: Vec<String>,
    /// Where each word starts in the canonical text.
    pub at: Vec<usize>,
    /// Where each string constant (quotes included) lies in the canonical text.
    pub strings: Vec<(usize, usize)>,
    /// Where the statement lies in the canonical text.
    pub span: (usize, usize),
    /// Every name: a dotted chain of identifiers (`hr.salaries`), unquoted parts
    /// lower-cased as the server folds them, quoted parts as written.
    pub names: Vec<String>,
}

impl Words {
    /// The value of the string constant at `span` in `text` (the canonical text).
    pub fn string_value(text: &str, span: (usize, usize)) -> String {
        text.get(span.0 + 1..span.1.saturating_sub(1))
            .unwrap_or("")
            .replace("''", "'")
    }

    /// The statement's canonical text from its `word`-th word to its end.
    pub fn from_word<'t>(&self, text: &'t str, word: usize) -> &'t str {
        let start = self.at.get(word).copied().unwrap_or(self.span.1);
        text.get(start..self.span.1).unwrap_or("")
    }
}

/// A text as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    /// The canonical text for sqlparser.
    pub text: String,
    /// How many statements the server sees (non-empty runs between top-level `;`).
    pub statements: usize,
    /// The words of each of those statements.
    pub words: Vec<Words>,
    /// How deeply function calls and brackets nest (`f(g(h(…)))`, `ARRAY[ARRAY[…`):
    /// sqlparser's time grows exponentially with it, so the budget bounds it.
    pub max_call_depth: usize,
    /// The most parts of one dotted name (`a.b.c`): sqlparser backtracks through each
    /// part before a subscript, doubling its time per part, so the budget bounds it.
    pub max_name_parts: usize,
    /// How deeply parentheses and brackets of any kind nest: sqlparser tries a
    /// subquery, a nested join and an expression at each `(`, so its time on a text
    /// it cannot parse grows exponentially with the nesting too.
    pub max_depth: usize,
    /// Why the server's reading is not certain (an unterminated string or comment, an
    /// invalid escape): then the text is not trusted to the parser.
    pub doubt: Option<String>,
}

fn ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn ident_cont(b: u8) -> bool {
    ident_start(b) || b.is_ascii_digit() || b == b'$'
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    out: String,
    settings: Settings,
    depth: usize,
    statements: usize,
    in_statement: bool,
    doubt: Option<String>,
    current: Words,
    finished: Vec<Words>,
    last: Last,
    /// For each open parenthesis, whether it opened a function call's arguments.
    parens: Vec<bool>,
    calls: usize,
    max_call_depth: usize,
    /// The deepest nesting of parentheses and brackets of any kind.
    max_depth: usize,
    /// Parts of the dotted name being read, and the most of any.
    name_parts: usize,
    max_name_parts: usize,
    /// Whether the last name read was an unquoted word of `NOT_CALLS`.
    keyword_last: bool,
}

/// Words that take a parenthesis without being a function call.
const NOT_CALLS: &[&str] = &[
    "IN",
    "EXISTS",
    "VALUES",
    "AS",
    "ON",
    "USING",
    "ANY",
    "ALL",
    "SOME",
    "FROM",
    "JOIN",
    "WHERE",
    "AND",
    "OR",
    "SELECT",
    "WITH",
    "LATERAL",
    "OVER",
    "FILTER",
    "WITHIN",
    "INTO",
    "TABLE",
    "THEN",
    "ELSE",
    "WHEN",
    "RETURNING",
    "BY",
    "SET",
];

/// The previous token, for joining `a . b` into one name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Name,
    Dot,
    Other,
}

/// Reads `src` under `settings`.
pub fn lex(src: &str, settings: Settings) -> Lexed {
    let mut l = Lexer {
        src,
        b: src.as_bytes(),
        i: 0,
        out: String::with_capacity(src.len() + 8),
        settings,
        depth: 0,
        statements: 0,
        in_statement: false,
        doubt: None,
        current: Words::default(),
        finished: Vec::new(),
        last: Last::Other,
        parens: Vec::new(),
        calls: 0,
        max_call_depth: 0,
        max_depth: 0,
        name_parts: 0,
        max_name_parts: 0,
        keyword_last: false,
    };
    l.run();
    l.end_statement();
    Lexed {
        text: l.out,
        statements: l.statements,
        words: l.finished,
        doubt: l.doubt,
        max_call_depth: l.max_call_depth,
        max_name_parts: l.max_name_parts,
        max_depth: l.max_depth,
    }
}

impl Lexer<'_> {
    fn peek(&self, at: usize) -> Option<u8> {
        self.b.get(self.i + at).copied()
    }

    fn doubt(&mut self, why: impl Into<String>) {
        if self.doubt.is_none() {
            self.doubt = Some(why.into());
        }
    }

    fn copy(&mut self, from: usize, to: usize) {
        self.out.push_str(&self.src[from..to]);
    }

    fn token(&mut self) {
        self.in_statement = true;
        self.last = Last::Other;
    }

    fn end_statement(&mut self) {
        if self.in_statement {
            self.statements += 1;
            let mut done = std::mem::take(&mut self.current);
            done.span.1 = self.out.len();
            self.finished.push(done);
            self.in_statement = false;
        }
        self.current.span = (self.out.len(), self.out.len());
        self.last = Last::Other;
    }

    /// Whether the word just read is one that takes a parenthesis without a call.
    fn after_keyword(&self) -> bool {
        self.keyword_last
    }

    /// A name part: joined to the name before it across a `.`.
    fn name(&mut self, part: &str) {
        self.keyword_last = false;
        match (self.last, self.current.names.last_mut()) {
            (Last::Dot, Some(prev)) => {
                prev.push('.');
                prev.push_str(part);
                self.name_parts += 1;
            }
            _ => {
                self.current.names.push(part.to_string());
                self.name_parts = 1;
            }
        }
        self.max_name_parts = self.max_name_parts.max(self.name_parts);
        self.in_statement = true;
        self.last = Last::Name;
    }

    fn run(&mut self) {
        while self.i < self.b.len() && self.doubt.is_none() {
            let c = self.b[self.i];
            match c {
                _ if is_space(c) => {
                    self.out.push(c as char);
                    self.i += 1;
                }
                b'-' if self.peek(1) == Some(b'-') => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'\'' => {
                    self.token();
                    self.i += 1;
                    let escapes = !self.settings.standard_conforming_strings;
                    self.quoted_string(escapes);
                }
                b'"' => {
                    self.in_statement = true;
                    self.i += 1;
                    if let Some(v) = self.quoted_ident() {
                        self.push_ident(&v);
                        self.name(&v);
                    }
                }
                b'$' => self.dollar(),
                b';' => {
                    if self.depth == 0 {
                        self.end_statement();
                        self.out.push(';');
                        self.current.span = (self.out.len(), self.out.len());
                    } else {
                        self.token();
                        self.out.push(';');
                    }
                    self.i += 1;
                }
                b'.' if !self.peek(1).is_some_and(|d| d.is_ascii_digit()) => {
                    let joins = self.last == Last::Name;
                    self.token();
                    if joins {
                        self.last = Last::Dot;
                    }
                    self.out.push('.');
                    self.i += 1;
                }
                b'(' | b'[' => {
                    // A call's parenthesis or any bracket (subscripts, ARRAY[…]):
                    // the nestings sqlparser backtracks through.
                    let call = c == b'['
                        || (c == b'(' && self.last == Last::Name && !self.after_keyword());
                    self.token();
                    self.depth += 1;
                    self.max_depth = self.max_depth.max(self.depth);
                    self.parens.push(call);
                    if call {
                        self.calls += 1;
                        self.max_call_depth = self.max_call_depth.max(self.calls);
                    }
                    self.out.push(c as char);
                    self.i += 1;
                }
                b')' | b']' => {
                    self.token();
                    self.depth = self.depth.saturating_sub(1);
                    if self.parens.pop() == Some(true) {
                        self.calls -= 1;
                    }
                    self.out.push(c as char);
                    self.i += 1;
                }
                b'0'..=b'9' => self.number(),
                b'.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
                _ if ident_start(c) => self.word(),
                _ => {
                    self.token();
                    self.out.push(c as char);
                    self.i += 1;
                }
            }
        }
    }

    fn line_comment(&mut self) {
        while self.i < self.b.len() && !matches!(self.b[self.i], b'\n' | b'\r') {
            self.i += 1;
        }
        self.out.push(' ');
    }

    fn block_comment(&mut self) {
        let mut depth = 0usize;
        while self.i < self.b.len() {
            if self.b[self.i] == b'/' && self.peek(1) == Some(b'*') {
                depth += 1;
                self.i += 2;
            } else if self.b[self.i] == b'*' && self.peek(1) == Some(b'/') {
                depth -= 1;
                self.i += 2;
                if depth == 0 {
                    self.out.push(' ');
                    return;
                }
            } else {
                self.i += 1;
            }
        }
        self.doubt("an unterminated /* comment");
    }

    /// After an opening `'`: the value up to the closing quote, with `''` and, when
    /// `escapes`, backslash escapes decoded; written as a standard string.
    fn quoted_string(&mut self, escapes: bool) {
        let mut value = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                self.doubt("an unterminated quoted string");
                return;
            };
            match c {
                b'\'' if self.peek(1) == Some(b'\'') => {
                    value.push('\'');
                    self.i += 2;
                }
                b'\'' => {
                    self.i += 1;
                    // 'a'<newline>'b' is one string to the server.
                    if let Some(next) = self.continuation() {
                        self.i = next + 1;
                        continue;
                    }
                    break;
                }
                b'\\' if escapes && self.settings.ascii_trail_bytes && self.after_high_byte() => {
                    // The second byte of a two-byte character, not an escape.
                    value.push('\\');
                    self.i += 1;
                }
                b'\\' if escapes && self.settings.ascii_trail_bytes && self.marker_at(self.i) => {
                    // An undecodable byte as the marker shows it: one character.
                    value.push_str(&self.src[self.i..self.i + 4]);
                    self.i += 4;
                }
                b'\\' if escapes => {
                    self.i += 1;
                    if !self.backslash_escape(&mut value) {
                        self.doubt("an unterminated quoted string");
                        return;
                    }
                }
                _ => {
                    let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
                    value.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
        self.push_string(&value);
    }

    /// Whether the byte before the cursor belongs to a non-ASCII character or ends an
    /// undecodable-byte marker.
    fn after_high_byte(&self) -> bool {
        self.i > 0 && (self.b[self.i - 1] >= 0x80 || is_marker_before(self.b, self.i))
    }

    /// Whether an undecodable-byte marker `\xHH` starts at `at`.
    fn marker_at(&self, at: usize) -> bool {
        self.b.len() >= at + 4 && is_marker_before(self.b, at + 4)
    }

    /// Where the next string of a continuation starts: only whitespace holding a
    /// newline between the closing quote and the next opening one.
    fn continuation(&self) -> Option<usize> {
        let mut j = self.i;
        let mut newline = false;
        while j < self.b.len() && is_space(self.b[j]) {
            newline |= matches!(self.b[j], b'\n' | b'\r');
            j += 1;
        }
        (newline && self.b.get(j) == Some(&b'\'')).then_some(j)
    }

    /// After a backslash in an escaped string: decodes one escape into `value`.
    fn backslash_escape(&mut self, value: &mut String) -> bool {
        let Some(c) = self.peek(0) else {
            return false;
        };
        let hex_run = |l: &Self, from: usize, max: usize| {
            let mut n = 0;
            while n < max && l.b.get(from + n).is_some_and(|d| d.is_ascii_hexdigit()) {
                n += 1;
            }
            n
        };
        match c {
            b'b' => value.push('\u{8}'),
            b'f' => value.push('\u{c}'),
            b'n' => value.push('\n'),
            b'r' => value.push('\r'),
            b't' => value.push('\t'),
            b'0'..=b'7' => {
                let mut n = 0;
                let mut v = 0u32;
                while n < 3 && self.peek(n).is_some_and(|d| (b'0'..=b'7').contains(&d)) {
                    v = v * 8 + (self.b[self.i + n] - b'0') as u32;
                    n += 1;
                }
                value.push(char::from_u32(v & 0xff).unwrap_or('\u{fffd}'));
                self.i += n;
                return true;
            }
            b'x' if hex_run(self, self.i + 1, 2) > 0 => {
                let n = hex_run(self, self.i + 1, 2);
                let v = u32::from_str_radix(&self.src[self.i + 1..self.i + 1 + n], 16).unwrap_or(0);
                value.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                self.i += 1 + n;
                return true;
            }
            b'u' | b'U' => {
                let want = if c == b'u' { 4 } else { 8 };
                if hex_run(self, self.i + 1, want) == want {
                    let v = u32::from_str_radix(&self.src[self.i + 1..self.i + 1 + want], 16)
                        .unwrap_or(0);
                    match char::from_u32(v) {
                        Some(ch) => value.push(ch),
                        None => self.doubt("an invalid Unicode escape in a string"),
                    }
                    self.i += 1 + want;
                    return true;
                }
                self.doubt("an invalid Unicode escape in a string");
                return true;
            }
            _ => {
                let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
                value.push(ch);
                self.i += ch.len_utf8();
                return true;
            }
        }
        self.i += 1;
        true
    }

    /// After an opening `"`: the identifier, `""` decoded.
    fn quoted_ident(&mut self) -> Option<String> {
        let start = self.i;
        let mut value = String::new();
        loop {
            match self.peek(0) {
                None => {
                    self.i = start;
                    self.doubt("an unterminated quoted identifier");
                    return None;
                }
                Some(b'"') if self.peek(1) == Some(b'"') => {
                    value.push('"');
                    self.i += 2;
                }
                Some(b'"') => {
                    self.i += 1;
                    return Some(value);
                }
                Some(_) => {
                    let ch = self.src[self.i..].chars().next().unwrap_or('\u{fffd}');
                    value.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn push_string(&mut self, value: &str) {
        let start = self.out.len();
        self.current.strings.push((start, start));
        self.out.push('\'');
        self.out.push_str(&value.replace('\'', "''"));
        self.out.push('\'');
        if let Some(last) = self.current.strings.last_mut() {
            last.1 = self.out.len();
        }
    }

    fn push_ident(&mut self, value: &str) {
        self.out.push('"');
        self.out.push_str(&value.replace('"', "\"\""));
        self.out.push('"');
    }

    /// `$1` (a parameter), `$tag$…$tag$` (a dollar-quoted string), or a lone `$`.
    fn dollar(&mut self) {
        self.token();
        if self.peek(1).is_some_and(|d| d.is_ascii_digit()) {
            let start = self.i;
            self.i += 1;
            while self.peek(0).is_some_and(|d| d.is_ascii_digit()) {
                self.i += 1;
            }
            self.copy(start, self.i);
            return;
        }
        let mut j = self.i + 1;
        if self.b.get(j).is_some_and(|&c| ident_start(c)) {
            j += 1;
            while self.b.get(j).is_some_and(|&c| ident_cont(c) && c != b'$') {
                j += 1;
            }
        }
        if self.b.get(j) != Some(&b'$') {
            self.out.push('$');
            self.i += 1;
            return;
        }
        let delim = &self.src[self.i..=j];
        let body_start = j + 1;
        match self.src[body_start..].find(delim) {
            Some(at) => {
                let body = self.src[body_start..body_start + at].to_string();
                self.i = body_start + at + delim.len();
                self.push_string(&body);
            }
            None => self.doubt("an unterminated dollar-quoted string"),
        }
    }

    fn number(&mut self) {
        self.token();
        let start = self.i;
        let digits = |l: &mut Self| {
            while l.peek(0).is_some_and(|d| d.is_ascii_digit() || d == b'_') {
                l.i += 1;
            }
        };
        digits(self);
        if self.peek(0) == Some(b'.') && self.peek(1) != Some(b'.') {
            self.i += 1;
            digits(self);
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
            if self.peek(1 + sign).is_some_and(|d| d.is_ascii_digit()) {
                self.i += 1 + sign;
                digits(self);
            }
        }
        self.copy(start, self.i);
        // `1from t` is `1 from t` to the server (or an error); never one token.
        if self.peek(0).is_some_and(ident_start) {
            self.out.push(' ');
        }
    }

    /// An identifier or keyword, or the prefix of a special string form.
    fn word(&mut self) {
        self.in_statement = true;
        let c = self.b[self.i];
        let next = self.peek(1);
        let special = matches!(
            (c.to_ascii_lowercase(), next),
            (b'e' | b'n' | b'b' | b'x', Some(b'\''))
        ) || (c.eq_ignore_ascii_case(&b'u')
            && next == Some(b'&')
            && matches!(self.peek(2), Some(b'\'' | b'"')));
        if special && !(c.eq_ignore_ascii_case(&b'u') && self.peek(2) == Some(b'"')) {
            self.last = Last::Other;
        }
        match (c.to_ascii_lowercase(), next) {
            (b'e', Some(b'\'')) => {
                self.i += 2;
                self.quoted_string(true);
                return;
            }
            (b'n', Some(b'\'')) => {
                self.i += 2;
                self.quoted_string(!self.settings.standard_conforming_strings);
                return;
            }
            (b'b' | b'x', Some(b'\'')) => {
                let start = self.i;
                self.i += 2;
                while self.peek(0).is_some_and(|d| d != b'\'') {
                    self.i += 1;
                }
                if self.peek(0).is_none() {
                    self.doubt("an unterminated bit-string constant");
                    return;
                }
                self.i += 1;
                self.copy(start, self.i);
                return;
            }
            (b'u', Some(b'&')) if matches!(self.peek(2), Some(b'\'' | b'"')) => {
                self.unicode_escaped();
                return;
            }
            _ => {}
        }
        let start = self.i;
        while self.peek(0).is_some_and(ident_cont) {
            self.i += 1;
        }
        self.current.at.push(self.out.len());
        self.copy(start, self.i);
        let word = &self.src[start..self.i];
        let upper = word.to_uppercase();
        let folded = word.to_lowercase();
        self.name(&folded);
        self.keyword_last = NOT_CALLS.contains(&upper.as_str());
        self.current.words.push(upper);
    }

    /// `U&'…'` or `U&"…"`, with an optional `UESCAPE 'c'`.
    fn unicode_escaped(&mut self) {
        let ident = self.peek(2) == Some(b'"');
        self.i += 3;
        let raw = if ident {
            match self.quoted_ident() {
                Some(v) => v,
                None => return,
            }
        } else {
            if !self.settings.standard_conforming_strings {
                self.doubt(
                    "a U&'…' string while standard_conforming_strings is off (the server refuses it)",
                );
                return;
            }
            let before = self.out.len();
            self.quoted_string(false);
            if self.doubt.is_some() {
                return;
            }
            // quoted_string wrote the raw value as a string; take it back to decode it.
            self.current.strings.pop();
            let written = self.out.split_off(before);
            written[1..written.len() - 1].replace("''", "'")
        };
        let escape = self.uescape().unwrap_or('\\');
        match decode_unicode_escapes(&raw, escape) {
            Ok(v) if ident => {
                self.push_ident(&v);
                self.name(&v);
            }
            Ok(v) => self.push_string(&v),
            Err(why) => self.doubt(why),
        }
    }

    /// A `UESCAPE 'c'` clause after a Unicode-escaped literal, consumed if present.
    fn uescape(&mut self) -> Option<char> {
        let mut j = self.i;
        while j < self.b.len() && is_space(self.b[j]) {
            j += 1;
        }
        let word = self.src.get(j..j + 7)?;
        if !word.eq_ignore_ascii_case("uescape")
            || self.b.get(j + 7).is_some_and(|&c| ident_cont(c))
        {
            return None;
        }
        j += 7;
        while j < self.b.len() && is_space(self.b[j]) {
            j += 1;
        }
        let rest = self.src.get(j..)?;
        let mut chars = rest.chars();
        if chars.next() != Some('\'') {
            self.doubt("UESCAPE must be followed by a one-character string");
            return None;
        }
        let c = chars.next()?;
        if chars.next() != Some('\'')
            || c.is_ascii_hexdigit()
            || matches!(c, '+' | '\'' | '"')
            || c.is_whitespace()
        {
            self.doubt("an invalid UESCAPE character");
            return None;
        }
        self.i = j + 2 + c.len_utf8();
        Some(c)
    }
}

/// Decodes `\XXXX`, `\+XXXXXX` (with `escape` in place of the backslash), `\\`, and
/// surrogate pairs, as the server does for `U&` literals.
pub fn decode_unicode_escapes(raw: &str, escape: char) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices().peekable();
    let mut high: Option<u32> = None;
    let invalid = || "an invalid Unicode escape (U&…)".to_string();
    while let Some((at, c)) = chars.next() {
        if c != escape {
            if high.is_some() {
                return Err(invalid());
            }
            out.push(c);
            continue;
        }
        let rest = &raw[at + c.len_utf8()..];
        if rest.starts_with(escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let (hex, len) = if let Some(r) = rest.strip_prefix('+') {
            (r.get(..6), 7)
        } else {
            (rest.get(..4), 4)
        };
        let Some(hex) = hex.filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())) else {
            return Err(invalid());
        };
        let v = u32::from_str_radix(hex, 16).map_err(|_| invalid())?;
        for _ in 0..len {
            chars.next();
        }
        match (high.take(), v) {
            (None, 0xD800..=0xDBFF) => high = Some(v),
            (Some(h), 0xDC00..=0xDFFF) => {
                let cp = 0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00);
                out.push(char::from_u32(cp).ok_or_else(invalid)?);
            }
            (None, v) => out.push(
                char::from_u32(v)
                    .filter(|&c| c != '\0')
                    .ok_or_else(invalid)?,
            ),
            (Some(_), _) => return Err(invalid()),
        }
    }
    if high.is_some() {
        return Err(invalid());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(s: &str) -> Lexed {
        lex(s, Settings::default())
    }

    fn off(s: &str) -> Lexed {
        lex(
            s,
            Settings {
                standard_conforming_strings: false,
                ..Settings::default()
            },
        )
    }

    #[test]
    fn backslashes_follow_standard_conforming_strings() {
        let attack = r"SELECT '\''; DROP TABLE victim; --'";
        let l = off(attack);
        assert_eq!(l.statements, 2, "{l:?}");
        assert!(l.text.contains("DROP TABLE victim"), "{l:?}");
        assert!(l.text.starts_with("SELECT ''''"), "{l:?}");
        let l = on(attack);
        assert_eq!(l.statements, 1, "standard: one string holding the rest");
        assert_eq!(l.text, "SELECT '\\''; DROP TABLE victim; --'");
        let l = on(r"SELECT 'a\'; SELECT 1");
        assert_eq!(l.statements, 2);
        let l = off(r"SELECT 'a\'; SELECT 1");
        assert_eq!(l.doubt.as_deref(), Some("an unterminated quoted string"));
        let l = on(r"SELECT E'\''; DROP TABLE v; --'");
        assert_eq!(
            l.statements, 2,
            "E'\\'' is one quote, then a statement: {l:?}"
        );
        assert_eq!(l.text, "SELECT ''''; DROP TABLE v;  ");
        let l = on(r"SELECT E'\\'; DROP TABLE v; --'");
        assert_eq!(l.statements, 2, "{l:?}");
        let l = on(r"SELECT E'\'; DROP TABLE v; --'");
        assert_eq!(l.statements, 1, "{l:?}");
        assert_eq!(
            l.words[0].words,
            ["SELECT"],
            "the DROP is inside the string"
        );
    }

    #[test]
    fn a_backslash_after_a_two_byte_character_can_be_its_trail_byte() {
        // SJIS 0x95 0x5C is one character; read under a stale UTF-8 as a marker and
        // a backslash, or under LATIN1 as two characters.
        let trail = Settings {
            ascii_trail_bytes: true,
            ..Settings::default()
        };
        for text in [
            r"SELECT E'\x95\'; DROP TABLE t; --'",
            "SELECT E'\u{2022}\\'; DROP TABLE t; --'",
        ] {
            assert!(Settings::trail_sensitive(text), "{text}");
            assert_eq!(on(text).statements, 1, "as an escape: {text}");
            let l = lex(text, trail);
            assert_eq!(l.statements, 2, "as a trail byte: {l:?}");
            assert_eq!(l.words[1].words, ["DROP", "TABLE", "T"]);
        }
        assert!(!Settings::trail_sensitive(r"SELECT E'a\'b'"));
    }

    #[test]
    fn escapes_are_decoded_into_standard_strings() {
        assert_eq!(
            on(r"SELECT E'a\nb\x41\101\u0042\\'").text,
            "SELECT 'a\nbAAB\\'"
        );
        assert_eq!(off(r"SELECT 'it\'s'").text, "SELECT 'it''s'");
        assert_eq!(on("SELECT 'a'\n  'b'").text, "SELECT 'ab'");
        assert_eq!(
            on("SELECT 'a' 'b'").text,
            "SELECT 'a' 'b'",
            "no newline: two tokens"
        );
        assert_eq!(
            on("SELECT $$it's$$, $q$a$$b$q$").text,
            "SELECT 'it''s', 'a$$b'"
        );
        assert_eq!(
            on("SELECT a$$b, $1, $2::int").text,
            "SELECT a$$b, $1, $2::int"
        );
    }

    #[test]
    fn unicode_escapes_in_identifiers_and_strings_are_decoded() {
        assert_eq!(
            on(r#"SELECT U&"pg\005fsleep"(5)"#).text,
            r#"SELECT "pg_sleep"(5)"#
        );
        assert_eq!(
            on(r#"SELECT U&"pg!005fsleep" UESCAPE '!'(5)"#).text,
            r#"SELECT "pg_sleep"(5)"#
        );
        assert_eq!(on(r"SELECT U&'\0044ROP \+01F600'").text, "SELECT 'DROP 😀'");
        assert_eq!(on(r"SELECT U&'\D83D\DE00'").text, "SELECT '😀'");
        assert!(on(r"SELECT U&'\00zz'").doubt.is_some());
        assert!(off(r"SELECT U&'\0041'").doubt.is_some());
    }

    #[test]
    fn comments_hide_nothing() {
        let l = on("SELECT 1 /* a /* nested */ ; DROP TABLE t; */ ; SELECT 2 -- ; DROP\n");
        assert_eq!(l.statements, 2, "{l:?}");
        assert!(!l.text.contains("DROP"));
        assert!(on("SELECT 1 /* /* */").doubt.is_some());
        assert_eq!(on("SELECT 1+--x\n2").text, "SELECT 1+ \n2");
    }

    #[test]
    fn statements_are_counted_at_the_top_level() {
        assert_eq!(on("SELECT 1; ; SELECT 2;").statements, 2);
        assert_eq!(on(";;").statements, 0);
        assert_eq!(
            on("CREATE RULE r AS ON INSERT TO t DO ALSO (DELETE FROM a; DELETE FROM b)").statements,
            1
        );
        assert_eq!(on("SELECT 1from t").text, "SELECT 1 from t");
        assert_eq!(on(r#"SELECT "a"";b""""#).text, r#"SELECT "a"";b""""#);
        assert_eq!(on(r#"SELECT "a"";b""""#).statements, 1);
    }

    #[test]
    fn words_and_dotted_names_are_kept_per_statement() {
        let l = on(r#"SELECT * FROM ONLY Hr . "Salaries"; do $$ begin end $$"#);
        assert_eq!(l.words.len(), 2);
        assert_eq!(l.words[0].words, ["SELECT", "FROM", "ONLY", "HR"]);
        assert!(
            l.words[0].names.contains(&"hr.Salaries".to_string()),
            "{l:?}"
        );
        assert_eq!(l.words[1].words, ["DO"]);
        let l = on("SELECT t.a, 1.5 FROM t");
        assert_eq!(l.words[0].names, ["select", "t.a", "from", "t"]);
        let l = on("select 1; DO $b$ BEGIN EXECUTE 'drop table t'; END $b$ ;");
        let w = &l.words[1];
        assert_eq!(
            &l.text[w.span.0..w.span.1],
            " DO ' BEGIN EXECUTE ''drop table t''; END ' "
        );
        assert_eq!(
            Words::string_value(&l.text, w.strings[0]),
            " BEGIN EXECUTE 'drop table t'; END "
        );
        assert_eq!(
            w.from_word(&l.text, 0),
            "DO ' BEGIN EXECUTE ''drop table t''; END ' "
        );
    }

    #[test]
    fn nested_function_calls_are_measured() {
        assert_eq!(on("SELECT f(g(h(1)), (2))").max_call_depth, 3);
        assert_eq!(
            on("SELECT 1 WHERE x IN (SELECT 1) AND EXISTS (SELECT count(*))").max_call_depth,
            1
        );
        assert_eq!(
            on("SELECT 'f(g(h(' , f(1)").max_call_depth,
            1,
            "not in strings"
        );
    }

    #[test]
    fn unterminated_forms_are_doubts() {
        for s in [
            "SELECT 'a",
            "SELECT \"a",
            "SELECT $x$ a",
            "SELECT E'\\",
            "SELECT B'01",
        ] {
            assert!(on(s).doubt.is_some(), "{s}");
        }
    }
}
