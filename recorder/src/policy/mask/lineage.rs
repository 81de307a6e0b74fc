//! Column lineage: which source columns each output column of a statement is computed
//! from. A column rule covers `customers.card`; PostgreSQL's RowDescription names the
//! source of a plain column reference, but `reverse(card)`, `card || 'x'`,
//! `encode(card::bytea, 'hex')` or `string_agg(card, '')` come back as computed
//! columns with no source at all. Reading the statement's tree says which columns
//! they were made from, so the rule still applies.
//!
//! The reading errs on the side of masking: an identifier that could name a column of
//! several relations in scope counts as all of them, a whole-row reference (`c`,
//! `row_to_json(c)`) counts as every column of the relation, a subquery's output counts
//! as everything it selects, and a function that runs SQL text (`query_to_xml`) makes
//! the output's sources unknown.

use crate::policy::guard::facts::is_dynamic_sql_function;
use sqlparser::ast::{
    Expr, FromTable, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
    Visit, Visitor,
};
use std::ops::ControlFlow;

/// A source an output column may carry values of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A column, by the table it was read from when the statement says so.
    Column {
        schema: Option<String>,
        table: Option<String>,
        column: String,
    },
    /// Every column of a table (a whole-row reference, or `*` inside a subquery).
    WholeRow {
        schema: Option<String>,
        table: String,
    },
    /// SQL text run by a function: anything at all.
    Unknown,
}

/// Where one output column comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    pub sources: Vec<Source>,
    /// Whether the column is exactly one source column (a reference, maybe cast), so
    /// a strategy that keeps part of the value still makes sense.
    pub direct: bool,
}

impl Lineage {
    /// Adds one more source (a column is no longer exactly one source if it differs).
    pub fn add_source(&mut self, s: Source) {
        if !self.sources.contains(&s) {
            self.direct &= self.sources.is_empty();
            self.sources.push(s);
        }
    }

    pub(super) fn add(&mut self, more: impl IntoIterator<Item = Source>) {
        for s in more {
            if !self.sources.contains(&s) {
                self.sources.push(s);
            }
        }
    }
}

/// One entry of a statement's select list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// One column.
    One(Lineage),
    /// `*` or `t.*` over tables: as many columns as they have, each read directly
    /// from one of them (the RowDescription says how many, and their names).
    AllOf(Vec<(Option<String>, String)>),
}

/// The select list of each statement of `statements` that returns rows, in order:
/// `None` for one whose columns cannot be read from its text (`EXECUTE`, `FETCH`,
/// `SHOW`…), and nothing for statements that return no rows.
pub fn of_statements(statements: &[Statement]) -> Vec<Option<Vec<Item>>> {
    statements
        .iter()
        .filter_map(|st| {
            let root = Env::default();
            match st {
                Statement::Query(q) => Some(Some(query(q, &root))),
                Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                    dml_returning(st, &root).map(Some)
                }
                Statement::Execute { .. }
                | Statement::Fetch { .. }
                | Statement::Explain { .. }
                | Statement::ExplainTable { .. }
                | Statement::ShowVariable { .. }
                | Statement::ShowVariables { .. }
                | Statement::ShowTables { .. }
                | Statement::ShowColumns { .. }
                | Statement::ShowFunctions { .. }
                | Statement::Call(_) => Some(None),
                _ => None,
            }
        })
        .collect()
}

/// The select list of one query (a `COPY (…) TO` reads its rows from one).
pub fn of_query(q: &Query) -> Vec<Item> {
    query(q, &Env::default())
}

/// Lays a select list over the `names` of the columns a result has: `*` takes as
/// many as the rest leaves. When the two cannot be lined up (two `*`s, or a count
/// that does not fit), each column that cannot be placed gets every source.
pub fn align(items: &[Item], names: &[&str]) -> Vec<Lineage> {
    let n = names.len();
    let width = |it: &Item| matches!(it, Item::One(_)) as usize;
    let fixed: usize = items.iter().map(width).sum();
    let wild = items.len() - fixed;
    let all_of = |tables: &[(Option<String>, String)], name: &str| Lineage {
        sources: tables
            .iter()
            .map(|(schema, table)| Source::Column {
                schema: schema.clone(),
                table: Some(table.clone()),
                column: name.to_string(),
            })
            .collect(),
        direct: tables.len() == 1,
    };
    if (wild == 0 && fixed == n) || (wild == 1 && fixed <= n) {
        let mut out = Vec::with_capacity(n);
        for it in items {
            match it {
                Item::One(l) => out.push(l.clone()),
                Item::AllOf(t) => {
                    let k = n - fixed;
                    for name in &names[out.len()..out.len() + k] {
                        out.push(all_of(t, name));
                    }
                }
            }
        }
        return out;
    }
    // Cannot line up: every column may hold any source of the list.
    let mut every = Lineage::default();
    let mut tables = Vec::new();
    for it in items {
        match it {
            Item::One(l) => every.add(l.sources.iter().cloned()),
            Item::AllOf(t) => tables.extend(t.iter().cloned()),
        }
    }
    names
        .iter()
        .map(|name| {
            let mut l = every.clone();
            l.add(all_of(&tables, name).sources);
            l.direct = false;
            l
        })
        .collect()
}

/// A column of a derived table or CTE, as its outer query sees it.
#[derive(Debug, Clone)]
enum DerivedColumn {
    Named(String, Lineage),
    /// Columns of a table selected with `*`, names unknown here.
    AllOf(Vec<(Option<String>, String)>),
}

/// A relation in scope.
#[derive(Debug, Clone)]
struct Rel {
    /// What the statement calls it: its alias, or its name's last part.
    name: String,
    kind: RelKind,
}

#[derive(Debug, Clone)]
enum RelKind {
    Table {
        schema: Option<String>,
        table: String,
    },
    Derived(Vec<DerivedColumn>),
    /// A set-returning function and the like: its columns carry whatever its
    /// arguments do.
    Opaque(Vec<Source>),
}

/// The relations and CTEs a query sees, innermost first.
#[derive(Debug, Default)]
pub(super) struct Env<'a> {
    rels: Vec<Rel>,
    ctes: Vec<(String, Vec<DerivedColumn>)>,
    outer: Option<&'a Env<'a>>,
}

impl<'a> Env<'a> {
    fn inner(&'a self) -> Env<'a> {
        Env {
            rels: Vec::new(),
            ctes: Vec::new(),
            outer: Some(self),
        }
    }

    fn cte(&self, name: &str) -> Option<&Vec<DerivedColumn>> {
        self.ctes
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, c)| c)
            .or_else(|| self.outer.and_then(|o| o.cte(name)))
    }

    /// The sources an identifier (one to three parts) may stand for, added to `out`
    /// (whose `direct` is cleared when one of them is itself computed).
    fn resolve(&self, parts: &[String], out: &mut Lineage) {
        let mut env = Some(self);
        while let Some(e) = env {
            if e.resolve_here(parts, out) {
                return;
            }
            env = e.outer;
        }
        // Nothing in scope has it: a column of a table the statement does not name
        // here (a correlated reference read loosely), by its name alone.
        if let Some(last) = parts.last() {
            out.add([Source::Column {
                schema: None,
                table: None,
                column: last.clone(),
            }]);
        }
    }

    fn resolve_here(&self, parts: &[String], out: &mut Lineage) -> bool {
        let rels = &self.rels;
        let rel = |name: &str| -> Vec<&Rel> {
            rels.iter()
                .filter(|r| r.name.eq_ignore_ascii_case(name))
                .collect()
        };
        match parts {
            [one] => {
                let whole = rel(one);
                if !whole.is_empty() {
                    for r in whole {
                        out.add(r.all_sources());
                    }
                    out.direct = false;
                    return true;
                }
                let before = out.sources.len();
                for r in &self.rels {
                    r.column(one, out);
                }
                out.sources.len() > before
            }
            [.., table, column] => {
                let named = rel(table);
                if named.is_empty() {
                    // `composite_column.field`: the column is the first part.
                    return parts.len() == 2 && self.resolve_here(&parts[..1], out);
                }
                for r in named {
                    r.column(column, out);
                }
                true
            }
            [] => false,
        }
    }
}

impl Rel {
    fn all_sources(&self) -> Vec<Source> {
        match &self.kind {
            RelKind::Table { schema, table } => vec![Source::WholeRow {
                schema: schema.clone(),
                table: table.clone(),
            }],
            RelKind::Derived(cols) => {
                let mut l = Lineage::default();
                for c in cols {
                    match c {
                        DerivedColumn::Named(_, x) => l.add(x.sources.iter().cloned()),
                        DerivedColumn::AllOf(t) => l.add(t.iter().map(|(s, t)| Source::WholeRow {
                            schema: s.clone(),
                            table: t.clone(),
                        })),
                    }
                }
                l.sources
            }
            RelKind::Opaque(s) => s.clone(),
        }
    }

    /// What column `name` of this relation carries (nothing if it has no such one).
    fn column(&self, name: &str, out: &mut Lineage) {
        match &self.kind {
            RelKind::Table { schema, table } => out.add([Source::Column {
                schema: schema.clone(),
                table: Some(table.clone()),
                column: name.to_string(),
            }]),
            RelKind::Derived(cols) => {
                for c in cols {
                    match c {
                        DerivedColumn::Named(n, l) if n.eq_ignore_ascii_case(name) => {
                            out.add(l.sources.iter().cloned());
                            out.direct &= l.direct;
                        }
                        DerivedColumn::AllOf(t) => out.add(t.iter().map(|(s, t)| Source::Column {
                            schema: s.clone(),
                            table: Some(t.clone()),
                            column: name.to_string(),
                        })),
                        DerivedColumn::Named(..) => {}
                    }
                }
            }
            RelKind::Opaque(s) => {
                out.add(s.iter().cloned());
                out.direct = false;
            }
        }
    }
}

pub(super) fn query(q: &Query, env: &Env<'_>) -> Vec<Item> {
    let mut with = env.inner();
    if let Some(w) = &q.with {
        for cte in &w.cte_tables {
            let name = cte.alias.name.value.clone();
            // A recursive CTE refers to itself: read it once without, once with.
            let first = named_columns(&cte.query, &with, &cte.alias.columns);
            with.ctes.push((name.clone(), first));
            if w.recursive {
                let second = named_columns(&cte.query, &with, &cte.alias.columns);
                with.ctes.pop();
                with.ctes.push((name, second));
            }
        }
    }
    set_expr(&q.body, &with)
}

fn set_expr(body: &SetExpr, env: &Env<'_>) -> Vec<Item> {
    match body {
        SetExpr::Select(s) => select(s, env),
        SetExpr::Query(q) => query(q, env),
        SetExpr::SetOperation { left, right, .. } => {
            let (l, r) = (set_expr(left, env), set_expr(right, env));
            merge(l, r)
        }
        SetExpr::Values(v) => {
            let mut cols: Vec<Lineage> = Vec::new();
            for row in &v.rows {
                for (i, e) in row.content.iter().enumerate() {
                    if cols.len() <= i {
                        cols.push(Lineage::default());
                    }
                    let l = expr_lineage(e, env);
                    cols[i].add(l.sources);
                }
            }
            cols.into_iter().map(Item::One).collect()
        }
        SetExpr::Insert(st) | SetExpr::Update(st) | SetExpr::Delete(st) => {
            dml_returning(st, env).unwrap_or_default()
        }
        SetExpr::Table(t) => match &t.table_name {
            Some(name) => match env.cte(name) {
                Some(cols) => items_of(cols),
                None => vec![Item::AllOf(vec![(t.schema_name.clone(), name.clone())])],
            },
            None => Vec::new(),
        },
        SetExpr::Merge(_) => Vec::new(),
    }
}

/// Two sides of a UNION, INTERSECT or EXCEPT: column by column.
fn merge(l: Vec<Item>, r: Vec<Item>) -> Vec<Item> {
    let lined_up = l.len() == r.len()
        && l.iter()
            .zip(&r)
            .all(|(a, b)| matches!((a, b), (Item::One(_), Item::One(_))));
    if lined_up {
        return l
            .into_iter()
            .zip(r)
            .map(|(a, b)| match (a, b) {
                (Item::One(mut a), Item::One(b)) => {
                    a.direct &= b.direct;
                    a.add(b.sources);
                    Item::One(a)
                }
                (a, _) => a,
            })
            .collect();
    }
    // Cannot line the sides up: the right side's sources reach every column.
    let mut extra = Lineage::default();
    for it in &r {
        match it {
            Item::One(x) => extra.add(x.sources.iter().cloned()),
            Item::AllOf(t) => extra.add(t.iter().map(|(s, t)| Source::WholeRow {
                schema: s.clone(),
                table: t.clone(),
            })),
        }
    }
    l.into_iter()
        .map(|it| match it {
            Item::One(mut a) => {
                a.direct = false;
                a.add(extra.sources.iter().cloned());
                Item::One(a)
            }
            other => other,
        })
        .collect()
}

fn select(s: &Select, env: &Env<'_>) -> Vec<Item> {
    let mut scope = env.inner();
    for twj in &s.from {
        add_relations(twj, &mut scope);
    }
    projection(&s.projection, &scope)
}

fn projection(items: &[SelectItem], scope: &Env<'_>) -> Vec<Item> {
    let mut out = Vec::new();
    for item in items {
        match item {
            SelectItem::UnnamedExpr(e)
            | SelectItem::ExprWithAlias { expr: e, .. }
            | SelectItem::ExprWithAliases { expr: e, .. } => {
                out.push(Item::One(expr_lineage(e, scope)))
            }
            SelectItem::Wildcard(_) => {
                for r in &scope.rels {
                    out.extend(rel_items(r));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => match kind {
                SelectItemQualifiedWildcardKind::ObjectName(name) => {
                    let parts = name_parts(name);
                    let last = parts.last().cloned().unwrap_or_default();
                    let named: Vec<&Rel> = scope
                        .rels
                        .iter()
                        .filter(|r| r.name.eq_ignore_ascii_case(&last))
                        .collect();
                    if named.is_empty() {
                        let mut l = Lineage::default();
                        scope.resolve(&parts, &mut l);
                        l.direct = false;
                        out.push(Item::One(l));
                    }
                    for r in named {
                        out.extend(rel_items(r));
                    }
                }
                SelectItemQualifiedWildcardKind::Expr(e) => {
                    out.push(Item::One(expr_lineage(e, scope)))
                }
            },
        }
    }
    out
}

fn rel_items(r: &Rel) -> Vec<Item> {
    match &r.kind {
        RelKind::Table { schema, table } => {
            vec![Item::AllOf(vec![(schema.clone(), table.clone())])]
        }
        RelKind::Derived(cols) => items_of(cols),
        RelKind::Opaque(s) => vec![Item::One(Lineage {
            sources: s.clone(),
            direct: false,
        })],
    }
}

fn items_of(cols: &[DerivedColumn]) -> Vec<Item> {
    cols.iter()
        .map(|c| match c {
            DerivedColumn::Named(_, l) => Item::One(l.clone()),
            DerivedColumn::AllOf(t) => Item::AllOf(t.clone()),
        })
        .collect()
}

/// The columns a derived table or CTE shows its outer query, renamed by its alias's
/// column list.
fn derived_columns(
    items: &[Item],
    aliases: &[sqlparser::ast::TableAliasColumnDef],
) -> Vec<DerivedColumn> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| match it {
            Item::One(l) => DerivedColumn::Named(
                aliases
                    .get(i)
                    .map(|a| a.name.value.clone())
                    .unwrap_or_default(),
                l.clone(),
            ),
            Item::AllOf(t) => DerivedColumn::AllOf(t.clone()),
        })
        .collect()
}

/// A derived table's columns with their names from its select list.
fn named_columns(
    q: &Query,
    env: &Env<'_>,
    aliases: &[sqlparser::ast::TableAliasColumnDef],
) -> Vec<DerivedColumn> {
    let items = query(q, env);
    let names = output_names(q);
    let mut cols = derived_columns(&items, aliases);
    for (i, c) in cols.iter_mut().enumerate() {
        if let DerivedColumn::Named(n, _) = c
            && n.is_empty()
        {
            *n = names.get(i).cloned().unwrap_or_default();
        }
    }
    cols
}

/// The names PostgreSQL gives a query's output columns, as far as the text says.
pub(super) fn output_names(q: &Query) -> Vec<String> {
    let mut body = q.body.as_ref();
    loop {
        match body {
            SetExpr::Query(inner) => body = inner.body.as_ref(),
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            _ => break,
        }
    }
    let SetExpr::Select(s) = body else {
        return Vec::new();
    };
    s.projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            SelectItem::UnnamedExpr(e) => expr_name(e),
            _ => String::new(),
        })
        .collect()
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => id.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Function(f) => name_parts(&f.name).last().cloned().unwrap_or_default(),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => expr_name(expr),
        _ => "?column?".into(),
    }
}

pub(super) fn add_relations(twj: &TableWithJoins, scope: &mut Env<'_>) {
    add_factor(&twj.relation, scope);
    for j in &twj.joins {
        add_factor(&j.relation, scope);
    }
}

pub(super) fn add_factor(f: &TableFactor, scope: &mut Env<'_>) {
    let alias_name =
        |a: &Option<sqlparser::ast::TableAlias>| a.as_ref().map(|a| a.name.value.clone());
    match f {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            let parts = name_parts(name);
            let last = parts.last().cloned().unwrap_or_default();
            let kind = if args.is_some() {
                RelKind::Opaque(sources_in(f, scope))
            } else if let (1, Some(cols)) = (parts.len(), scope.cte(&last)) {
                RelKind::Derived(cols.clone())
            } else {
                RelKind::Table {
                    schema: (parts.len() > 1).then(|| parts[parts.len() - 2].clone()),
                    table: last.clone(),
                }
            };
            let kind = match (kind, alias) {
                (RelKind::Derived(mut cols), Some(a)) => {
                    rename(&mut cols, &a.columns);
                    RelKind::Derived(cols)
                }
                (k, _) => k,
            };
            scope.rels.push(Rel {
                name: alias_name(alias).unwrap_or(last),
                kind,
            });
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            // A LATERAL subquery sees the relations before it; reading every derived
            // table that way only adds sources.
            let cols = {
                let view = Env {
                    rels: scope.rels.clone(),
                    ctes: Vec::new(),
                    outer: scope.outer,
                };
                named_columns(
                    subquery,
                    &view,
                    alias.as_ref().map_or(&[][..], |a| &a.columns),
                )
            };
            scope.rels.push(Rel {
                name: alias_name(alias).unwrap_or_default(),
                kind: RelKind::Derived(cols),
            });
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => add_relations(table_with_joins, scope),
        other => {
            let name = table_factor_alias(other).unwrap_or_default();
            let sources = sources_in(other, scope);
            scope.rels.push(Rel {
                name,
                kind: RelKind::Opaque(sources),
            });
        }
    }
}

fn rename(cols: &mut [DerivedColumn], aliases: &[sqlparser::ast::TableAliasColumnDef]) {
    for (c, a) in cols.iter_mut().zip(aliases) {
        if let DerivedColumn::Named(n, _) = c {
            *n = a.name.value.clone();
        }
    }
}

fn table_factor_alias(f: &TableFactor) -> Option<String> {
    match f {
        TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::JsonTable { alias, .. } => alias.as_ref().map(|a| a.name.value.clone()),
        _ => None,
    }
}

fn dml_returning(st: &Statement, env: &Env<'_>) -> Option<Vec<Item>> {
    let mut scope = env.inner();
    let returning = match st {
        Statement::Insert(i) => {
            if let TableObject::TableName(name) = &i.table {
                let parts = name_parts(name);
                let table = parts.last().cloned().unwrap_or_default();
                scope.rels.push(Rel {
                    name: i
                        .table_alias
                        .as_ref()
                        .map(|a| a.alias.value.clone())
                        .unwrap_or_else(|| table.clone()),
                    kind: RelKind::Table {
                        schema: (parts.len() > 1).then(|| parts[parts.len() - 2].clone()),
                        table,
                    },
                });
            }
            i.returning.as_ref()
        }
        Statement::Update(u) => {
            add_relations(&u.table, &mut scope);
            u.returning.as_ref()
        }
        Statement::Delete(d) => {
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
            for t in from {
                add_relations(t, &mut scope);
            }
            for t in d.using.iter().flatten() {
                add_relations(t, &mut scope);
            }
            d.returning.as_ref()
        }
        _ => None,
    }?;
    Some(projection(returning, &scope))
}

/// Where one expression's value comes from.
pub(super) fn expr_lineage(e: &Expr, scope: &Env<'_>) -> Lineage {
    let mut bare = e;
    while let Expr::Cast { expr, .. } | Expr::Nested(expr) = bare {
        bare = expr;
    }
    // A plain reference (maybe cast) is as direct as what it names.
    let parts: Option<Vec<String>> = match bare {
        Expr::Identifier(id) => Some(vec![id.value.clone()]),
        Expr::CompoundIdentifier(p) => Some(p.iter().map(|i| i.value.clone()).collect()),
        _ => None,
    };
    let mut l = Lineage {
        sources: Vec::new(),
        direct: true,
    };
    match parts {
        Some(parts) => scope.resolve(&parts, &mut l),
        None => l.direct = false,
    }
    l.add(sources_in(e, scope));
    l.direct &= l.sources.len() == 1;
    l
}

/// Every source the identifiers, subqueries and functions inside `node` reach.
pub(super) fn sources_in<V: Visit>(node: &V, scope: &Env<'_>) -> Vec<Source> {
    let mut c = Collector {
        scope,
        depth: 0,
        out: Lineage::default(),
    };
    let _ = node.visit(&mut c);
    c.out.sources
}

struct Collector<'s, 'e> {
    scope: &'s Env<'e>,
    /// How many queries deep the visit is inside the node (their identifiers are read
    /// in their own scope, by `query`).
    depth: usize,
    out: Lineage,
}

impl Collector<'_, '_> {
    /// `t.*` inside an expression (`row_to_json(t.*)`): every column of `t`.
    fn whole_row(&mut self, name: &ObjectName) {
        if let Some(last) = name_parts(name).pop() {
            self.scope.resolve(&[last], &mut self.out);
        }
    }
}

/// The `t.*` arguments of a call (`row_to_json(c.*)`, `json_agg(c.*)`): whole rows
/// the visitor does not see as expressions.
fn qualified_wildcard_args(f: &sqlparser::ast::Function) -> impl Iterator<Item = &ObjectName> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let args = match &f.args {
        FunctionArguments::List(l) => l.args.as_slice(),
        _ => &[],
    };
    args.iter().filter_map(|a| match a {
        FunctionArg::Unnamed(FunctionArgExpr::QualifiedWildcard(name))
        | FunctionArg::Named {
            arg: FunctionArgExpr::QualifiedWildcard(name),
            ..
        }
        | FunctionArg::ExprNamed {
            arg: FunctionArgExpr::QualifiedWildcard(name),
            ..
        } => Some(name),
        _ => None,
    })
}

impl Visitor for Collector<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.depth == 0 {
            for it in query(q, self.scope) {
                match it {
                    Item::One(l) => self.out.add(l.sources),
                    Item::AllOf(t) => self.out.add(
                        t.into_iter()
                            .map(|(schema, table)| Source::WholeRow { schema, table }),
                    ),
                }
            }
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e
            && let Some(name) = name_parts(&f.name).last()
            && is_dynamic_sql_function(name)
        {
            self.out.add([Source::Unknown]);
        }
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match e {
            Expr::Identifier(id) => self
                .scope
                .resolve(std::slice::from_ref(&id.value), &mut self.out),
            Expr::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(|p: &Ident| p.value.clone()).collect();
                self.scope.resolve(&parts, &mut self.out)
            }
            Expr::QualifiedWildcard(name, _) => self.whole_row(name),
            Expr::Function(f) => {
                for name in qualified_wildcard_args(f) {
                    self.whole_row(name);
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// When a statement sends notifications (`pg_notify(…)`), the columns it mentions
/// anywhere, each with every table it names (and with none): a payload is delivered
/// to listening sessions as a NotificationResponse no column rule sees, so a masked
/// column must not reach one. `None` when no statement calls `pg_notify`.
pub fn notify_mentions(statements: &[Statement]) -> Option<Vec<Source>> {
    #[derive(Default)]
    struct Mentions {
        notifies: bool,
        tables: Vec<(Option<String>, String)>,
        /// Alias → the table it names.
        aliases: Vec<(String, usize)>,
        columns: Vec<String>,
    }
    impl Visitor for Mentions {
        type Break = ();
        fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                alias: Some(a),
                args: None,
                ..
            } = f
            {
                // The relation itself is visited next, as the table at this index.
                self.aliases.push((a.name.value.clone(), self.tables.len()));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
            let parts = name_parts(name);
            if let Some(t) = parts.last() {
                let schema = (parts.len() > 1).then(|| parts[parts.len() - 2].clone());
                self.tables.push((schema, t.clone()));
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Function(f)
                    if name_parts(&f.name)
                        .last()
                        .is_some_and(|n| n.eq_ignore_ascii_case("pg_notify")) =>
                {
                    self.notifies = true;
                }
                Expr::Identifier(id) => self.columns.push(id.value.clone()),
                Expr::CompoundIdentifier(p) => {
                    // `c.card`: the column; `c`, in case it is a composite field.
                    self.columns.extend(p.iter().map(|i| i.value.clone()))
                }
                Expr::QualifiedWildcard(name, _) => self.columns.extend(name_parts(name).pop()),
                _ => {}
            }
            if let Expr::Function(f) = e {
                for name in qualified_wildcard_args(f) {
                    self.columns.extend(name_parts(name).pop());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut m = Mentions::default();
    for st in statements {
        let _ = st.visit(&mut m);
    }
    if !m.notifies {
        return None;
    }
    let mut out = Lineage::default();
    for c in &m.columns {
        out.add(m.tables.iter().map(|(schema, table)| Source::Column {
            schema: schema.clone(),
            table: Some(table.clone()),
            column: c.clone(),
        }));
        out.add([Source::Column {
            schema: None,
            table: None,
            column: c.clone(),
        }]);
        // A whole-row reference names a table (or its alias), not a column.
        let by_alias = m
            .aliases
            .iter()
            .filter(|(a, _)| a.eq_ignore_ascii_case(c))
            .filter_map(|(_, i)| m.tables.get(*i));
        let by_name = m.tables.iter().filter(|(_, t)| t.eq_ignore_ascii_case(c));
        out.add(
            by_alias
                .chain(by_name)
                .map(|(schema, table)| Source::WholeRow {
                    schema: schema.clone(),
                    table: table.clone(),
                }),
        );
    }
    Some(out.sources)
}

pub(super) fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) => id.value.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::sql::Sql;

    fn lineage(sql: &str, names: &[&str]) -> Vec<Lineage> {
        let parsed = Sql::new(sql);
        let st = parsed.statements().expect("parses");
        let items = of_statements(st).remove(0).expect("readable");
        align(&items, names)
    }

    fn col(table: &str, column: &str) -> Source {
        Source::Column {
            schema: None,
            table: Some(table.into()),
            column: column.into(),
        }
    }

    #[test]
    fn transforms_carry_their_source_column() {
        for sql in [
            "SELECT reverse(card) FROM customers",
            "SELECT card || 'x' FROM customers",
            "SELECT encode(card::bytea, 'hex') FROM customers c",
            "SELECT string_agg(card, '') FROM customers",
            "SELECT substr(c.card, 1, 12) FROM customers AS c",
            "SELECT translate(card, '0123456789', 'abcdefghij') FROM customers",
            "SELECT x FROM (SELECT reverse(card) AS x FROM customers) s",
            "WITH d AS (SELECT card FROM customers) SELECT upper(card) FROM d",
            "WITH d(k) AS (SELECT card FROM customers) SELECT k || '' FROM d",
            "SELECT (SELECT max(card) FROM customers)",
            "SELECT lower(t.card) FROM (SELECT * FROM customers) t",
        ] {
            let l = lineage(sql, &["x"]);
            assert!(
                l[0].sources.contains(&col("customers", "card")),
                "{sql}: {l:?}"
            );
            assert!(!l[0].direct, "{sql}");
        }
    }

    #[test]
    fn whole_rows_and_dynamic_sql_reach_everything() {
        for sql in [
            "SELECT row_to_json(c.*) FROM customers c",
            "SELECT json_agg(customers.*) FROM customers",
        ] {
            let l = lineage(sql, &["x"]);
            assert!(
                l[0].sources.contains(&Source::WholeRow {
                    schema: None,
                    table: "customers".into()
                }),
                "{sql}: {l:?}"
            );
        }
        let l = lineage("SELECT row_to_json(c) FROM customers c", &["row_to_json"]);
        assert_eq!(
            l[0].sources,
            [Source::WholeRow {
                schema: None,
                table: "customers".into()
            }]
        );
        let l = lineage(
            "SELECT query_to_xml('select card from customers', true, true, '')",
            &["q"],
        );
        assert!(l[0].sources.contains(&Source::Unknown));
    }

    #[test]
    fn stars_take_the_columns_the_result_has() {
        let l = lineage(
            "SELECT *, reverse(card) FROM customers",
            &["id", "card", "reverse"],
        );
        assert_eq!(l[0].sources, [col("customers", "id")]);
        assert!(l[1].direct);
        assert!(l[2].sources.contains(&col("customers", "card")) && !l[2].direct);
        let l = lineage(
            "SELECT a, card FROM customers UNION SELECT 1, reverse(card) FROM archive",
            &["a", "card"],
        );
        assert!(l[1].sources.contains(&col("archive", "card")) && !l[1].direct);
        let l = lineage(
            "DELETE FROM customers RETURNING reverse(card)",
            &["reverse"],
        );
        assert!(l[0].sources.contains(&col("customers", "card")));
    }

    #[test]
    fn notifications_say_what_they_mention() {
        let parsed = Sql::new("SELECT pg_notify('ch', reverse(c.card)) FROM customers c");
        let m = notify_mentions(parsed.statements().unwrap()).expect("notifies");
        assert!(m.contains(&col("customers", "card")), "{m:?}");
        let parsed = Sql::new("SELECT pg_notify('ch', row_to_json(c.*)::text) FROM customers c");
        let m = notify_mentions(parsed.statements().unwrap()).expect("notifies");
        assert!(
            m.contains(&Source::WholeRow {
                schema: None,
                table: "customers".into()
            }),
            "{m:?}"
        );
        let parsed = Sql::new("SELECT reverse(card) FROM customers");
        assert_eq!(notify_mentions(parsed.statements().unwrap()), None);
    }

    #[test]
    fn plain_columns_are_direct_and_others_are_left_alone() {
        let l = lineage("SELECT id, card::text FROM customers", &["id", "card"]);
        assert_eq!(l[0].sources, [col("customers", "id")]);
        assert!(l[1].direct);
        let l = lineage("SELECT 1, now()", &["a", "b"]);
        assert!(l.iter().all(|x| x.sources.is_empty()));
    }
}
