//! The masking one session applies, compiled from its rules and independent of any
//! wire protocol: column rules decide by the column a value came from, value
//! detectors scan every text value. A protocol tap asks which rule covers a column
//! once per result description, then masks value by value.

use super::column_pattern::{ColumnPattern, TableName};
use super::detectors::{Context, Detector};
use super::lineage::Source;
use super::rules::MaskRule;
use super::strategy::Strategy;
use super::tally::Tally;
use super::value_masker::{Masked, ValueMasker};

/// A rule that covers columns.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    /// The rule's name.
    pub rule: String,
    pub patterns: Vec<ColumnPattern>,
    pub strategy: Strategy,
    /// Detectors to look for inside covered values; `None`: the whole value.
    pub within: Option<ValueMasker>,
}

/// How a value relates to the column rule that covers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnUse {
    /// Computed from the covered column rather than the column itself.
    pub transformed: bool,
    /// What detectors know of the column.
    pub context: Context,
}

/// What masking a value gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Unchanged.
    Clean,
    /// Replaced by this text.
    Text(String),
    /// Replaced by NULL.
    Null,
}

/// The compiled masking of one session (or of its archive copy).
#[derive(Debug, Clone)]
pub struct SessionMasker {
    pub columns: Vec<ColumnRule>,
    /// Detectors of rules that name no columns, applied to every text value.
    pub values: ValueMasker,
}

impl SessionMasker {
    /// Compiles rules (column rules in order, all free detectors into one scan).
    pub fn compile(rules: &[&MaskRule], hash_key: [u8; 32]) -> Result<Self, String> {
        let keyed = |s: &Strategy| match s {
            Strategy::Hash { .. } => Strategy::Hash { key: hash_key },
            other => other.clone(),
        };
        let labelled = |r: &MaskRule| -> Vec<(String, Detector, Strategy)> {
            r.detectors
                .iter()
                .map(|d| {
                    (
                        format!("{}/detector:{}", r.name, d.name()),
                        d.clone(),
                        keyed(&r.strategy),
                    )
                })
                .collect()
        };
        let mut columns = Vec::new();
        let mut free = Vec::new();
        for r in rules {
            if r.columns.is_empty() {
                free.extend(labelled(r));
            } else {
                columns.push(ColumnRule {
                    rule: r.name.clone(),
                    patterns: r.columns.clone(),
                    strategy: keyed(&r.strategy),
                    within: if r.detectors.is_empty() {
                        None
                    } else {
                        Some(ValueMasker::labelled(labelled(r))?)
                    },
                });
            }
        }
        Ok(SessionMasker {
            columns,
            values: ValueMasker::labelled(free)?,
        })
    }

    /// Whether any rule covers columns (then the tap needs to know where columns
    /// come from).
    pub fn has_column_rules(&self) -> bool {
        !self.columns.is_empty()
    }

    /// Whether any column rule names a table.
    pub fn has_qualified_rules(&self) -> bool {
        self.columns
            .iter()
            .any(|c| c.patterns.iter().any(ColumnPattern::is_qualified))
    }

    /// Every column pattern, for a catalog lookup.
    pub fn column_patterns(&self) -> impl Iterator<Item = &ColumnPattern> {
        self.columns.iter().flat_map(|c| c.patterns.iter())
    }

    /// The first column rule covering a column named `column` read from `table`.
    pub fn column_rule(&self, table: Option<TableName<'_>>, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.patterns.iter().any(|p| p.matches(table, column)))
    }

    /// Like `column_rule` for a column of a table the tap cannot name: qualified
    /// rules then cover it by the column part alone, so masking errs on the safe side.
    pub fn column_rule_unknown_table(&self, column: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.patterns.iter().any(|p| p.matches_column(column)))
    }

    /// The first column rule covering a source named in SQL text, and what it names
    /// (`customers.card`), reading names loosely (a table named without its schema
    /// may be in any schema) so masking errs on the safe side.
    pub fn rule_for_source(&self, source: &Source) -> Option<(usize, String)> {
        let first = |f: &dyn Fn(&ColumnPattern) -> bool| {
            (0..self.columns.len()).find(|&r| self.columns[r].patterns.iter().any(f))
        };
        match source {
            Source::Column {
                schema,
                table: Some(table),
                column,
            } => first(&|p| p.matches_named(schema.as_deref(), table, column))
                .map(|r| (r, format!("{table}.{column}"))),
            Source::Column {
                table: None,
                column,
                ..
            } => self
                .column_rule_unknown_table(column)
                .map(|r| (r, column.clone())),
            Source::WholeRow { schema, table } => {
                first(&|p| p.names_table(schema.as_deref(), table))
                    .map(|r| (r, format!("{table}.*")))
            }
            Source::Unknown => (!self.columns.is_empty()).then(|| (0, "dynamic_sql".to_string())),
        }
    }

    /// Masks a value of a column under column rule `rule`; `label` is what a whole
    /// value is counted under (`rule/column:name`), `json` keeps a masked JSON value
    /// valid JSON.
    pub fn mask_column(
        &self,
        rule: usize,
        label: &str,
        value: &str,
        json: bool,
        tally: &mut Tally,
    ) -> Outcome {
        self.mask_column_in(rule, label, value, json, ColumnUse::default(), tally)
    }

    /// Like `mask_column`, knowing how the value was made from the column.
    pub fn mask_column_in(
        &self,
        rule: usize,
        label: &str,
        value: &str,
        json: bool,
        how: ColumnUse,
        tally: &mut Tally,
    ) -> Outcome {
        let c = &self.columns[rule];
        match &c.within {
            None => {
                tally.add(label, 1);
                let strategy = if how.transformed {
                    c.strategy.for_transformed()
                } else {
                    c.strategy.clone()
                };
                match &strategy {
                    Strategy::Null => Outcome::Null,
                    s if json => Outcome::Text(json_string(&s.apply(value))),
                    s => Outcome::Text(s.apply(value)),
                }
            }
            Some(within) => outcome(within.mask_in(value, how.context), tally),
        }
    }

    /// Scans a text value with the detectors of rules that name no columns.
    pub fn scan(&self, value: &str, tally: &mut Tally) -> Outcome {
        self.scan_in(value, Context::default(), tally)
    }

    /// Like `scan`, knowing more of where the value comes from (a column about SSNs).
    pub fn scan_in(&self, value: &str, context: Context, tally: &mut Tally) -> Outcome {
        if self.values.is_empty() {
            return Outcome::Clean;
        }
        outcome(self.values.mask_in(value, context), tally)
    }

    /// Whether there are free detectors to scan with.
    pub fn scans(&self) -> bool {
        !self.values.is_empty()
    }
}

fn outcome(m: Masked, tally: &mut Tally) -> Outcome {
    match m {
        Masked::Clean => Outcome::Clean,
        Masked::Text(text, counts) => {
            tally.add_all(&counts);
            Outcome::Text(text)
        }
        Masked::Null(counts) => {
            tally.add_all(&counts);
            Outcome::Null
        }
    }
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, columns: &[&str], detectors: &[&str], strategy: Strategy) -> MaskRule {
        MaskRule {
            name: name.into(),
            columns: columns
                .iter()
                .map(|c| ColumnPattern::parse(c).unwrap())
                .collect(),
            detectors: detectors
                .iter()
                .map(|d| Detector::parse(d).unwrap())
                .collect(),
            strategy,
            connections: vec![],
            groups: vec![],
            exempt_groups: vec![],
            record_raw: false,
            scrub_commands: true,
        }
    }

    #[test]
    fn column_rules_mask_whole_values_and_free_detectors_scan_everything() {
        let cards = rule(
            "cards",
            &["customers.card"],
            &[],
            Strategy::Partial { keep: 4 },
        );
        let pii = rule("pii", &[], &["email"], Strategy::Redact);
        let m = SessionMasker::compile(&[&cards, &pii], [3; 32]).unwrap();
        let customers = TableName {
            schema: "public",
            table: "customers",
        };
        let r = m.column_rule(Some(customers), "card").unwrap();
        let mut t = Tally::default();
        assert_eq!(
            m.mask_column(
                r,
                "cards/column:customers.card",
                "4111111111111111",
                false,
                &mut t
            ),
            Outcome::Text("************1111".into())
        );
        assert_eq!(m.column_rule(None, "card"), None);
        assert_eq!(m.column_rule_unknown_table("card"), Some(r));
        assert_eq!(
            m.scan("mail bob@example.com", &mut t),
            Outcome::Text("mail [redacted]".into())
        );
        assert_eq!(m.scan("nothing here", &mut t), Outcome::Clean);
        assert_eq!(
            t.into_entries(),
            vec!["cards/column:customers.card=1", "pii/detector:email=1"]
        );
    }

    #[test]
    fn detectors_inside_columns_and_json_values_stay_valid() {
        let notes = rule("notes", &["note*"], &["us_ssn"], Strategy::Null);
        let doc = rule("doc", &["profile"], &[], Strategy::Redact);
        let m = SessionMasker::compile(&[&notes, &doc], [3; 32]).unwrap();
        let mut t = Tally::default();
        let r = m.column_rule(None, "notes").unwrap();
        assert_eq!(
            m.mask_column(r, "x", "ssn 123-45-6789", false, &mut t),
            Outcome::Null
        );
        assert_eq!(
            m.mask_column(r, "x", "no ssn", false, &mut t),
            Outcome::Clean
        );
        let d = m.column_rule(None, "profile").unwrap();
        assert_eq!(
            m.mask_column(d, "doc/column:profile", "{\"a\":1}", true, &mut t),
            Outcome::Text("\"[redacted]\"".into())
        );
        assert!(!m.scans());
    }
}
