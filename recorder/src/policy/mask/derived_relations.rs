//! Relations whose columns hold other columns' values. A rule on `customers.card` must
//! still apply when the card is read back through a view (`CREATE VIEW v AS SELECT
//! reverse(card) AS r FROM customers`, then `SELECT r FROM v`), a materialized view, a
//! table created from a query, or a table the session filled from one (`INSERT …
//! SELECT`, `UPDATE … SET`). PostgreSQL's RowDescription names `v.r` as the source;
//! the definitions say `v.r` is computed from `customers.card`.
//!
//! The definitions come from the catalog at session start (every view that depends,
//! at any depth, on a table with a covered column) and from the session's own
//! statements as they pass. A source that names a defined relation stands also for
//! what its definition computes the column from, followed through views of views.
//! Sources are only ever added, so a definition that did not take effect (a refused or
//! failed statement, a view dropped since) can only mask more.

use super::lineage::{Item, Lineage, Source, align};
use super::relation_definitions::{Definition, all_sources, definitions_in};
use sqlparser::ast::Statement;
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// How many views of views are followed; a deeper chain may hold anything.
const MAX_DEPTH: usize = 16;
/// The most definitions a session keeps; past it, any relation may hold anything.
pub const MAX_DEFINITIONS: usize = 4096;
/// The most sources one column is followed to; a column that reaches more may hold
/// anything (and planning a result stays cheap whatever a session defined).
const MAX_SOURCES: usize = 512;

/// One relation's definitions, laid out by column.
#[derive(Debug, Clone)]
struct Defined {
    schema: Option<String>,
    /// Named columns and what each is computed from.
    columns: Vec<(String, Lineage)>,
    /// Tables whose columns it shows under their own names (a `*`).
    star: Vec<(Option<String>, String)>,
    /// What its columns whose names the text does not give are computed from.
    unnamed: Vec<Source>,
    /// Everything it reads, for a whole-row reference.
    all: Vec<Source>,
    /// Whether the names are the catalog's own (a column not listed does not exist).
    exact: bool,
    whole: bool,
}

/// `l`, or "anything" when it reaches more than [`MAX_SOURCES`] sources.
fn capped(mut l: Lineage) -> Lineage {
    if l.sources.len() > MAX_SOURCES {
        l.sources = vec![Source::Unknown];
        l.direct = false;
    }
    l
}

impl Defined {
    fn from(d: &Definition, exact: bool) -> Self {
        let mut out = Defined {
            schema: d.schema.clone(),
            columns: Vec::new(),
            star: Vec::new(),
            unnamed: Vec::new(),
            all: capped(Lineage {
                sources: all_sources(d),
                direct: false,
            })
            .sources,
            exact,
            whole: d.whole,
        };
        if let Some(names) = &d.names {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            out.columns = names
                .iter()
                .cloned()
                .zip(align(&d.items, &refs).into_iter().map(capped))
                .collect();
            return out;
        }
        // A select list names the columns it creates; one that fills a table's
        // columns by position (`INSERT INTO t SELECT …`) does not name them.
        let lined_up = d.whole && d.output_names.len() == d.items.len();
        for (i, it) in d.items.iter().enumerate() {
            match it {
                Item::One(l) => match d.output_names.get(i).filter(|n| lined_up && !n.is_empty()) {
                    Some(n) => out.columns.push((n.clone(), capped(l.clone()))),
                    None => out.unnamed.extend(l.sources.iter().cloned()),
                },
                Item::AllOf(t) => out.star.extend(t.iter().cloned()),
            }
        }
        out.unnamed = capped(Lineage {
            sources: std::mem::take(&mut out.unnamed),
            direct: false,
        })
        .sources;
        if out.star.len() > MAX_SOURCES {
            out.star.clear();
            out.unnamed = vec![Source::Unknown];
        }
        out
    }

    /// What column `name` of it is computed from, and whether it is exactly that.
    fn column(&self, name: &str, out: &mut Lineage) {
        let mut found = false;
        for (n, l) in &self.columns {
            if n.eq_ignore_ascii_case(name) {
                out.add(l.sources.iter().cloned());
                out.direct &= l.direct;
                found = true;
            }
        }
        if found {
            return;
        }
        if self.exact {
            // The catalog's names are all there is: a `*` was printed out in full.
            return;
        }
        out.add(self.star.iter().map(|(schema, table)| Source::Column {
            schema: schema.clone(),
            table: Some(table.clone()),
            column: name.to_string(),
        }));
        if !self.unnamed.is_empty() {
            out.add(self.unnamed.iter().cloned());
            out.direct = false;
        }
        if self.whole && self.star.is_empty() && self.unnamed.is_empty() {
            // A name the reading of its text did not give (PostgreSQL names some
            // computed columns its own way): it may be any of them.
            out.add(self.all.iter().cloned());
            out.direct = false;
        }
    }
}

/// The derived relations a session knows of, by lower-cased name.
#[derive(Debug, Clone, Default)]
pub struct DerivedRelations {
    by_name: HashMap<String, Vec<Defined>>,
    /// A catalog view's OID → its schema, name and column names by attribute number.
    views: HashMap<u32, (String, String, Vec<String>)>,
    count: usize,
    /// More definitions came than are kept, or SQL whose definitions cannot be read
    /// ran: any relation not defined here may hold anything.
    overflowed: bool,
}

impl DerivedRelations {
    /// Adds a view read from the catalog, with the OID RowDescriptions name it by.
    pub fn add_view(&mut self, rel: u32, d: &Definition) {
        if let Some(names) = &d.names {
            self.views.insert(
                rel,
                (
                    d.schema.clone().unwrap_or_default(),
                    d.name.clone(),
                    names.clone(),
                ),
            );
        }
        self.insert(d, true);
    }

    /// A catalog view whose text could not be read: every column may hold anything.
    pub fn add_unreadable_view(&mut self, rel: u32, schema: &str, name: &str, names: Vec<String>) {
        let d = Definition {
            schema: Some(schema.to_string()),
            name: name.to_string(),
            items: names
                .iter()
                .map(|_| {
                    Item::One(Lineage {
                        sources: vec![Source::Unknown],
                        direct: false,
                    })
                })
                .collect(),
            names: Some(names),
            output_names: Vec::new(),
            whole: true,
        };
        self.add_view(rel, &d);
    }

    /// Adds what a statement of the session defines.
    pub fn add(&mut self, d: &Definition) {
        self.insert(d, false);
    }

    fn insert(&mut self, d: &Definition, exact: bool) {
        if self.count >= MAX_DEFINITIONS {
            self.overflowed = true;
            return;
        }
        self.count += 1;
        self.by_name
            .entry(d.name.to_lowercase())
            .or_default()
            .push(Defined::from(d, exact));
    }

    /// Whether nothing is defined (then lineage is left as it is).
    pub fn is_empty(&self) -> bool {
        self.count == 0 && !self.overflowed
    }

    /// The source a result column of a catalog view stands for (`rel`, `attnum` from
    /// its RowDescription).
    pub fn view_column(&self, rel: u32, attnum: i16) -> Option<Source> {
        let (schema, name, columns) = self.views.get(&rel)?;
        let column = columns.get(usize::try_from(attnum).ok()?.checked_sub(1)?)?;
        Some(Source::Column {
            schema: Some(schema.clone()),
            table: Some(name.clone()),
            column: column.clone(),
        })
    }

    /// The column names of a defined relation, when they are all known (for a COPY of
    /// it, which has no RowDescription).
    pub fn column_names(&self, schema: Option<&str>, table: &str) -> Option<Vec<String>> {
        self.matching(schema, table).find_map(|d| {
            (d.whole && d.star.is_empty() && d.unnamed.is_empty())
                .then(|| d.columns.iter().map(|(n, _)| n.clone()).collect())
        })
    }

    fn matching<'a>(
        &'a self,
        schema: Option<&'a str>,
        table: &str,
    ) -> impl Iterator<Item = &'a Defined> + 'a {
        self.by_name
            .get(&table.to_lowercase())
            .into_iter()
            .flatten()
            .filter(move |d| match (schema, &d.schema) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => true,
            })
    }

    /// `l` with every source a defined relation's column is computed from added,
    /// through views of views.
    pub fn expand(&self, l: &Lineage) -> Lineage {
        if self.is_empty() {
            return l.clone();
        }
        let mut out = l.clone();
        let mut frontier = l.sources.clone();
        for _ in 0..MAX_DEPTH {
            let mut step = Lineage {
                sources: Vec::new(),
                direct: true,
            };
            for s in &frontier {
                self.sources_of(s, &mut step);
                if step.sources.len() > MAX_SOURCES {
                    break;
                }
            }
            if step.sources.len() > MAX_SOURCES {
                break;
            }
            out.direct &= step.direct;
            let new: Vec<Source> = step
                .sources
                .into_iter()
                .filter(|s| !out.sources.contains(s))
                .collect();
            if new.is_empty() {
                return out;
            }
            out.add(new.iter().cloned());
            if out.sources.len() > MAX_SOURCES {
                break;
            }
            frontier = new;
        }
        out.add([Source::Unknown]);
        out.direct = false;
        out
    }

    fn sources_of(&self, s: &Source, out: &mut Lineage) {
        let (schema, table, column) = match s {
            Source::Column {
                schema,
                table: Some(table),
                column,
            } => (schema, table, Some(column)),
            Source::WholeRow { schema, table } => (schema, table, None),
            _ => return,
        };
        let mut known = false;
        for d in self.matching(schema.as_deref(), table) {
            known = true;
            match column {
                Some(c) => d.column(c, out),
                None => {
                    out.add(d.all.iter().cloned());
                    out.direct = false;
                }
            }
        }
        if self.overflowed && !known {
            out.add([Source::Unknown]);
            out.direct = false;
        }
    }
}

/// A session's derived relations, shared by its two directions: the client's
/// statements add to them as they pass (before they run), results read them.
#[derive(Debug, Clone, Default)]
pub struct SharedDerived(Arc<RwLock<DerivedRelations>>);

impl SharedDerived {
    /// Shares the relations read at session start.
    pub fn new(d: DerivedRelations) -> Self {
        SharedDerived(Arc::new(RwLock::new(d)))
    }

    /// Adds what `statements` define. A function, procedure or trigger body may define
    /// or fill relations when it runs, out of sight: from then on any relation the
    /// session did not define may hold anything.
    pub fn note(&self, statements: &[Statement]) {
        let defs = definitions_in(statements);
        let hidden = statements.iter().any(|st| {
            matches!(
                st,
                Statement::CreateFunction(_)
                    | Statement::CreateProcedure { .. }
                    | Statement::CreateTrigger(_)
            )
        });
        if defs.is_empty() && !hidden {
            return;
        }
        let mut d = self.0.write().unwrap_or_else(|e| e.into_inner());
        for def in &defs {
            d.add(def);
        }
        d.overflowed |= hidden;
    }

    /// A text the gateway cannot parse (a `DO` block among them) may define or fill
    /// relations it cannot read: from then on any relation the session did not define
    /// may hold anything.
    pub fn note_unreadable(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).overflowed = true;
    }

    /// The relations as they stand.
    pub fn read(&self) -> RwLockReadGuard<'_, DerivedRelations> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::relation_definitions::{definitions_in, view_definition};
    use crate::policy::sql::Sql;

    fn col(table: &str, column: &str) -> Source {
        Source::Column {
            schema: None,
            table: Some(table.into()),
            column: column.into(),
        }
    }

    fn session(sqls: &[&str]) -> DerivedRelations {
        let mut d = DerivedRelations::default();
        for sql in sqls {
            let parsed = Sql::new(sql);
            for def in definitions_in(parsed.statements().unwrap()) {
                d.add(&def);
            }
        }
        d
    }

    fn one(s: Source) -> Lineage {
        Lineage {
            sources: vec![s],
            direct: true,
        }
    }

    #[test]
    fn a_view_column_stands_for_what_it_is_computed_from() {
        let d = session(&[
            "CREATE VIEW v AS SELECT id, reverse(card) AS r, card FROM customers",
            "CREATE VIEW w AS SELECT upper(r) AS u FROM v",
        ]);
        let r = d.expand(&one(col("v", "r")));
        assert!(
            r.sources.contains(&col("customers", "card")) && !r.direct,
            "{r:?}"
        );
        let plain = d.expand(&one(col("v", "card")));
        assert!(plain.sources.contains(&col("customers", "card")) && plain.direct);
        let id = d.expand(&one(col("v", "id")));
        assert!(!id.sources.contains(&col("customers", "card")), "{id:?}");
        let u = d.expand(&one(col("W", "u")));
        assert!(
            u.sources.contains(&col("customers", "card")),
            "views of views: {u:?}"
        );
        let whole = d.expand(&one(Source::WholeRow {
            schema: None,
            table: "v".into(),
        }));
        assert!(whole.sources.contains(&col("customers", "card")));
        let untouched = d.expand(&one(col("orders", "total")));
        assert_eq!(untouched.sources, [col("orders", "total")]);
    }

    #[test]
    fn filled_tables_keep_their_own_columns_and_gain_the_filled_ones() {
        let d = session(&[
            "INSERT INTO notes (body) SELECT reverse(card) FROM customers",
            "INSERT INTO log SELECT id, card FROM customers",
            "CREATE TABLE copy AS SELECT * FROM customers",
        ]);
        let body = d.expand(&one(col("notes", "body")));
        assert!(body.sources.contains(&col("customers", "card")));
        let other = d.expand(&one(col("notes", "id")));
        assert_eq!(other.sources, [col("notes", "id")], "not filled");
        let positional = d.expand(&one(col("log", "anything")));
        assert!(positional.sources.contains(&col("customers", "card")));
        let star = d.expand(&one(col("copy", "card")));
        assert!(star.sources.contains(&col("customers", "card")) && star.direct);
    }

    #[test]
    fn catalog_views_are_exact_and_found_by_oid() {
        let text = "SELECT reverse((customers.card)::text) AS r, customers.id FROM customers;";
        let parsed = Sql::new(text);
        let def = view_definition(
            "public",
            "cv",
            vec!["r".into(), "id".into()],
            parsed.statements().unwrap(),
        )
        .expect("one query");
        let mut d = DerivedRelations::default();
        d.add_view(17000, &def);
        let src = d.view_column(17000, 1).expect("attnum 1");
        let l = d.expand(&one(src));
        assert!(l.sources.contains(&col("customers", "card")), "{l:?}");
        assert_eq!(d.view_column(17000, 3), None);
        let id = d.expand(&one(d.view_column(17000, 2).unwrap()));
        assert!(!id.sources.contains(&col("customers", "card")));
        assert_eq!(
            d.column_names(Some("public"), "cv"),
            Some(vec!["r".to_string(), "id".to_string()])
        );
        let mut u = DerivedRelations::default();
        u.add_unreadable_view(17001, "public", "odd", vec!["x".into()]);
        let x = u.expand(&one(u.view_column(17001, 1).unwrap()));
        assert!(x.sources.contains(&Source::Unknown));
    }

    #[test]
    fn past_the_limit_any_relation_may_hold_anything() {
        let mut d = DerivedRelations::default();
        let parsed = Sql::new("CREATE VIEW v AS SELECT reverse(card) AS r FROM customers");
        let def = definitions_in(parsed.statements().unwrap()).remove(0);
        for _ in 0..=MAX_DEFINITIONS {
            d.add(&def);
        }
        let l = d.expand(&one(col("orders", "total")));
        assert!(l.sources.contains(&Source::Unknown));
    }

    #[test]
    fn a_column_reaching_too_many_sources_may_hold_anything() {
        let cols: Vec<String> = (0..MAX_SOURCES + 10).map(|i| format!("c{i}")).collect();
        let sql = format!(
            "CREATE VIEW wide AS SELECT concat({}) AS x FROM t",
            cols.join(", ")
        );
        let d = session(&[&sql]);
        let l = d.expand(&one(col("wide", "x")));
        assert!(l.sources.contains(&Source::Unknown), "{}", l.sources.len());
    }

    #[test]
    fn a_body_that_runs_later_makes_every_undefined_relation_anything() {
        let shared = SharedDerived::default();
        let parsed = Sql::new("SELECT reverse(card) FROM customers");
        shared.note(parsed.statements().unwrap());
        let plain = shared.read().expand(&one(col("orders", "total")));
        assert_eq!(plain.sources, [col("orders", "total")]);
        let parsed = Sql::new(
            "CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'CREATE VIEW v AS SELECT 1'; END $$",
        );
        shared.note(parsed.statements().unwrap());
        let after = shared.read().expand(&one(col("v", "x")));
        assert!(after.sources.contains(&Source::Unknown), "{after:?}");
        let unreadable = SharedDerived::default();
        unreadable.note_unreadable();
        assert!(
            unreadable
                .read()
                .expand(&one(col("dv", "r")))
                .sources
                .contains(&Source::Unknown)
        );
    }

    #[test]
    fn a_cycle_of_definitions_ends() {
        let d = session(&[
            "CREATE VIEW a AS SELECT x FROM b",
            "CREATE VIEW b AS SELECT x FROM a",
        ]);
        let l = d.expand(&one(col("a", "x")));
        assert!(l.sources.contains(&col("b", "x")));
    }
}
