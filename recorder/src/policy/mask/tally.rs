//! What masking did to one event, counted by what masked it, for the event's
//! `masked` column: `rule/column:table.column=3`, `rule/detector:email=1`,
//! `rule/binary_nulled:column=2`. The count after the last `=` is what the session's
//! `masked_values` adds up.

/// Counts per label, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(Vec<(String, u64)>);

impl Tally {
    /// Adds `n` under `label` (allocates only the first time a label is seen).
    pub fn add(&mut self, label: &str, n: u64) {
        match self.0.iter_mut().find(|(l, _)| l == label) {
            Some((_, c)) => *c += n,
            None => self.0.push((label.to_string(), n)),
        }
    }

    /// Adds what a value masker reported.
    pub fn add_all(&mut self, counts: &[(String, usize)]) {
        for (label, n) in counts {
            self.add(label, *n as u64);
        }
    }

    /// Adds everything another tally counted.
    pub fn merge(&mut self, other: Tally) {
        for (label, n) in other.0 {
            self.add(&label, n);
        }
    }

    /// Whether nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries of the `masked` column.
    pub fn into_entries(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(label, n)| crate::text_format::masked_entry(&label, n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_label() {
        let mut t = Tally::default();
        t.add("pii/detector:email", 1);
        t.add("cards/column:card", 2);
        t.add("pii/detector:email", 2);
        assert_eq!(
            t.into_entries(),
            vec!["pii/detector:email=3", "cards/column:card=2"]
        );
    }
}
