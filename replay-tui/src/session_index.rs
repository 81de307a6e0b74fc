//! The browser's index of sessions: the browse columns of every session the flags
//! select, read once and held compactly (ids in one string buffer, users, connections
//! and protocols interned), so sorting, filtering as you type and paging never query
//! the archive again. Over 1.5 million sessions a page is a slice of an order vector,
//! a sort is an in-memory sort of row numbers, and only the rows on screen become
//! [`SessionRow`]s.

use crate::model::SessionRow;
use std::collections::{HashMap, HashSet};

/// How the browser orders sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Start,
    User,
    Connection,
    Protocol,
    Duration,
    Commands,
    Errors,
    Blocked,
    Masked,
}

impl SortKey {
    /// Every key, in column order.
    pub const ALL: [SortKey; 9] = [
        SortKey::Start,
        SortKey::User,
        SortKey::Connection,
        SortKey::Protocol,
        SortKey::Duration,
        SortKey::Commands,
        SortKey::Errors,
        SortKey::Blocked,
        SortKey::Masked,
    ];
}

/// Every selected session, column by column.
#[derive(Debug, Default)]
pub struct SessionIndex {
    id_text: String,
    id_ends: Vec<u32>,
    start: Vec<i64>,
    /// `None` while the session is live.
    end: Vec<Option<i64>>,
    user: Vec<u32>,
    connection: Vec<u32>,
    protocol: Vec<u32>,
    commands: Vec<u64>,
    errors: Vec<u64>,
    blocked: Vec<u64>,
    masked: Vec<u64>,
    names: Names,
    /// When the archive was listed: a live session's duration is measured to here.
    listed_at_ns: i64,
}

/// Interned strings: the few distinct users, connections and protocols of millions
/// of sessions, with each name's rank in sorted order so sorting compares integers.
#[derive(Debug, Default)]
struct Names {
    text: Vec<String>,
    codes: HashMap<String, u32>,
    rank: Vec<u32>,
}

impl Names {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.codes.get(s) {
            return c;
        }
        let c = self.text.len() as u32;
        self.text.push(s.to_string());
        self.codes.insert(s.to_string(), c);
        c
    }

    fn rank_all(&mut self) {
        let mut by_name: Vec<u32> = (0..self.text.len() as u32).collect();
        by_name.sort_by(|a, b| self.text[*a as usize].cmp(&self.text[*b as usize]));
        self.rank = vec![0; self.text.len()];
        for (r, c) in by_name.into_iter().enumerate() {
            self.rank[c as usize] = r as u32;
        }
    }
}

/// What the typed filter matches: user or connection text, or a command of the
/// session (found by a query over the events, which may arrive later).
#[derive(Debug, Default, Clone)]
pub struct TextFilter {
    /// Lower-cased needle; empty matches every session.
    pub needle: String,
    /// Sessions with a command containing the needle, once known.
    pub command_hits: Option<HashSet<String>>,
}

impl SessionIndex {
    /// Builds the index; `listed_at_ns` is when the rows were read.
    pub fn from_rows(rows: impl IntoIterator<Item = SessionRow>, listed_at_ns: i64) -> Self {
        let mut ix = SessionIndex {
            listed_at_ns,
            ..Default::default()
        };
        for r in rows {
            ix.push(&r);
        }
        ix.finish();
        ix
    }

    /// Appends one session (call [`SessionIndex::finish`] after the last).
    pub(crate) fn push(&mut self, r: &SessionRow) {
        self.push_parts(
            &r.session_id,
            r.start_ns,
            if r.live { None } else { r.end_ns },
            &r.user,
            &r.connection,
            &r.protocol,
            [r.commands, r.errors, r.blocked, r.masked_values],
        );
    }

    /// Appends one session from borrowed values; `end_ns` is `None` while it is live,
    /// `counts` are commands, errors, blocked and masked values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn push_parts(
        &mut self,
        session_id: &str,
        start_ns: i64,
        end_ns: Option<i64>,
        user: &str,
        connection: &str,
        protocol: &str,
        counts: [u64; 4],
    ) {
        self.id_text.push_str(session_id);
        self.id_ends.push(self.id_text.len() as u32);
        self.start.push(start_ns);
        self.end.push(end_ns);
        self.user.push(self.names.intern(user));
        self.connection.push(self.names.intern(connection));
        self.protocol.push(self.names.intern(protocol));
        let [commands, errors, blocked, masked] = counts;
        self.commands.push(commands);
        self.errors.push(errors);
        self.blocked.push(blocked);
        self.masked.push(masked);
    }

    pub(crate) fn set_listed_at(&mut self, ns: i64) {
        self.listed_at_ns = ns;
    }

    /// Ranks the interned names; needed before sorting.
    pub(crate) fn finish(&mut self) {
        self.names.rank_all();
        self.id_text.shrink_to_fit();
    }

    /// Sessions in the index.
    pub fn len(&self) -> usize {
        self.start.len()
    }

    /// Whether no session was selected.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }

    /// The id of row `i`.
    pub fn id(&self, i: u32) -> &str {
        let i = i as usize;
        let from = if i == 0 {
            0
        } else {
            self.id_ends[i - 1] as usize
        };
        &self.id_text[from..self.id_ends[i] as usize]
    }

    fn duration(&self, i: usize) -> i64 {
        self.end[i].unwrap_or(self.listed_at_ns) - self.start[i]
    }

    /// Row `i` as the browser draws it.
    pub fn row(&self, i: u32) -> SessionRow {
        let n = i as usize;
        SessionRow {
            session_id: self.id(i).to_string(),
            start_ns: self.start[n],
            end_ns: self.end[n],
            user: self.names.text[self.user[n] as usize].clone(),
            connection: self.names.text[self.connection[n] as usize].clone(),
            protocol: self.names.text[self.protocol[n] as usize].clone(),
            commands: self.commands[n],
            errors: self.errors[n],
            blocked: self.blocked[n],
            masked_values: self.masked[n],
            live: self.end[n].is_none(),
        }
    }

    /// The rows the filter keeps, in the order asked for (ties broken by start time,
    /// then by row, so the order is total and stable across re-sorts).
    pub fn arrange(&self, sort: SortKey, descending: bool, filter: &TextFilter) -> Vec<u32> {
        let name_hits: Vec<bool> = self
            .names
            .text
            .iter()
            .map(|n| n.to_lowercase().contains(&filter.needle))
            .collect();
        let mut order: Vec<u32> = (0..self.len() as u32)
            .filter(|&i| {
                let n = i as usize;
                filter.needle.is_empty()
                    || name_hits[self.user[n] as usize]
                    || name_hits[self.connection[n] as usize]
                    || filter
                        .command_hits
                        .as_ref()
                        .is_some_and(|h| h.contains(self.id(i)))
            })
            .collect();
        // Sort integer keys only: names by their rank, ties by start time, then by
        // row, so the order is total and the same on every re-sort.
        let flip = |v: i64| (v as u64) ^ (1 << 63);
        let primary = |n: usize| -> u64 {
            match sort {
                SortKey::Start => flip(self.start[n]),
                SortKey::User => self.names.rank[self.user[n] as usize] as u64,
                SortKey::Connection => self.names.rank[self.connection[n] as usize] as u64,
                SortKey::Protocol => self.names.rank[self.protocol[n] as usize] as u64,
                SortKey::Duration => flip(self.duration(n)),
                SortKey::Commands => self.commands[n],
                SortKey::Errors => self.errors[n],
                SortKey::Blocked => self.blocked[n],
                SortKey::Masked => self.masked[n],
            }
        };
        let mut keyed: Vec<(u64, u64, u32)> = order
            .iter()
            .map(|&i| (primary(i as usize), flip(self.start[i as usize]), i))
            .collect();
        if descending {
            keyed.sort_unstable_by(|a, b| b.cmp(a));
        } else {
            keyed.sort_unstable();
        }
        order.clear();
        order.extend(keyed.into_iter().map(|(_, _, i)| i));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, user: &str, start: i64, commands: u64) -> SessionRow {
        SessionRow {
            session_id: id.into(),
            start_ns: start,
            end_ns: Some(start + 10),
            user: user.into(),
            connection: "pg".into(),
            protocol: "postgres".into(),
            commands,
            errors: 0,
            blocked: 0,
            masked_values: 0,
            live: false,
        }
    }

    fn ids(ix: &SessionIndex, order: &[u32]) -> Vec<String> {
        order.iter().map(|&i| ix.id(i).to_string()).collect()
    }

    #[test]
    fn sorts_by_any_column_with_ties_broken_by_start() {
        let ix = SessionIndex::from_rows(
            [
                row("C", "bob", 3, 5),
                row("A", "carol", 1, 7),
                row("B", "alice", 2, 5),
            ],
            100,
        );
        let none = TextFilter::default();
        assert_eq!(
            ids(&ix, &ix.arrange(SortKey::Start, false, &none)),
            ["A", "B", "C"]
        );
        assert_eq!(
            ids(&ix, &ix.arrange(SortKey::User, false, &none)),
            ["B", "C", "A"]
        );
        assert_eq!(
            ids(&ix, &ix.arrange(SortKey::Commands, true, &none)),
            ["A", "C", "B"]
        );
        assert_eq!(ix.row(1).user, "carol");
        assert_eq!(ix.row(1).session_id, "A");
    }

    #[test]
    fn the_typed_filter_matches_names_and_command_hits() {
        let ix = SessionIndex::from_rows(
            [
                row("A", "alice", 1, 1),
                row("B", "bob", 2, 1),
                row("C", "carol", 3, 1),
            ],
            100,
        );
        let mut f = TextFilter {
            needle: "ali".into(),
            command_hits: None,
        };
        assert_eq!(ids(&ix, &ix.arrange(SortKey::Start, false, &f)), ["A"]);
        f.command_hits = Some(["C".to_string()].into_iter().collect());
        assert_eq!(ids(&ix, &ix.arrange(SortKey::Start, false, &f)), ["A", "C"]);
    }
}
