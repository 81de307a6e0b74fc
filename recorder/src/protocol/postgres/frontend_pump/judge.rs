//! The policy's verdict on a statement: deny rules, the approval it needs, and the
//! select lists column rules read, all from one parse; and the refusal of a denied
//! statement, recorded and queued for the client in order.

use super::super::error_response::gateway_error;
use super::super::io::TapError;
use super::super::masking::notification_guard::masked_notification;
use super::super::masking::statement_columns::read_columns;
use super::super::pipeline::Pending;
use super::super::session_state::SessionState;
use super::{Columns, FrontendState};
use crate::approvals::rules::NeedsApproval;
use crate::policy::guard::Denial;
use crate::policy::sql::{Sql, on_right_stack};
use std::sync::Arc;
use tapline_store::{Direction, EventDraft, Kind, Status};

impl FrontendState {
    /// Records a refused statement and queues the error the client gets in its place;
    /// `simple` says whether the upstream gets the failing query or the failing Parse.
    pub(super) fn refuse(
        &mut self,
        state: &SessionState,
        raw: &[u8],
        sql: String,
        d: Denial,
        simple: bool,
    ) -> Result<(), TapError> {
        tracing::info!(rule = %d.rule, matched = %d.matched, "statement refused");
        state.record(
            EventDraft::new(Direction::Client, Kind::Query)
                .status(Status::Blocked)
                .command(sql.clone())
                .text(format!(
                    "{sql}\n-- blocked by rule `{}` ({}): {}",
                    d.rule, d.matched, d.message
                ))
                .payload(bytes::Bytes::copy_from_slice(raw)),
        )?;
        let error = gateway_error(
            "ERROR",
            d.sqlstate,
            d.message.clone(),
            Some(format!(
                "refused by tapline policy `{}` ({})",
                d.rule, d.matched
            )),
        );
        state.pipeline.push(Pending::Refused {
            command: sql,
            error,
            text: format!(
                "{} ERROR: {}\nHINT: refused by tapline policy `{}` ({})",
                d.sqlstate, d.message, d.rule, d.matched
            ),
            status: Status::Blocked,
            simple,
        });
        Ok(())
    }

    /// The deny rules' verdict on `sql`, else the approval it needs unless a
    /// session-wide approval covers its shape: one parse serves all three, made where
    /// it is safe (`policy::sql`). With no rule at all nothing is parsed.
    pub(super) async fn judge(
        &self,
        state: &SessionState,
        sql: &str,
    ) -> (Option<Denial>, Option<NeedsApproval>, Columns) {
        let column_maskers = state.masking.column_maskers();
        if state.guard.is_empty() && state.approvals.is_empty() && column_maskers.is_empty() {
            return (None, None, None);
        }
        let guard = state.guard.clone();
        let approvals = state.approvals.clone();
        let derived = state.masking.catalog.derived().clone();
        let shapes = (!self.approved_shapes.is_empty()).then(|| self.approved_shapes.clone());
        on_right_stack(
            sql,
            state.sql_settings.get(),
            move |sql: &Sql<'_>| {
                // Column rules plan results from the same parse (see `lineage`), and
                // follow the views and tables it defines (`derived_relations`).
                let columns = (!column_maskers.is_empty()).then(|| {
                    match sql.statements() {
                        Ok(statements) => derived.note(statements),
                        Err(_) => derived.note_unreadable(),
                    }
                    Arc::new(read_columns(sql))
                });
                match guard
                    .check_sql(sql)
                    .or_else(|| masked_notification(sql, &column_maskers, &derived))
                {
                    Some(d) => (Some(d), None, columns),
                    None => {
                        let needs = approvals.check(sql);
                        let covered = needs
                            .as_ref()
                            .is_some_and(|n| shapes.as_ref().is_some_and(|s| s.contains(&n.shape)));
                        (None, needs.filter(|_| !covered), columns)
                    }
                }
            },
            || (Some(Denial::check_failed()), None, None),
        )
        .await
    }
}
