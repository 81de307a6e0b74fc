//! Inline masking of PostgreSQL results, before they leave the gateway: DataRow in
//! text and binary formats, COPY OUT rows, fast-path function results, and the text
//! of errors and notices.
//!
//! A session has up to two maskers: what its client gets and, when one of the
//! caller's groups is exempt from a rule that still masks the archive, what the
//! archive keeps. The recorded payload is always the archive's masked bytes, and the
//! event's `masked` column counts what was masked in them.

pub mod catalog;
pub mod column_plan;
pub mod command_scrub;
pub mod copy_out;
pub mod data_row;
pub mod function_result;
pub mod notice;
pub mod notification_guard;
pub mod statement_columns;

use crate::policy::mask::rules::SessionMasking;
use crate::policy::mask::session_masker::SessionMasker;
use crate::policy::mask::tally::Tally;
use crate::protocol::postgres::encoding::PgEncoding;
use crate::protocol::postgres::row::Column;
use crate::protocol::postgres::wire::DecodeError;
use bytes::Bytes;
use catalog::Catalog;
use column_plan::{ColumnPlan, StatementColumns, plan};
use copy_out::{CopyPlan, plan_copy};
use statement_columns::StatementText;
use std::sync::Arc;

/// The masking of one PostgreSQL session.
#[derive(Debug, Clone, Default)]
pub struct PgMasking {
    /// [what the client gets, what the archive keeps]; `None`: unmasked.
    maskers: [Option<Arc<SessionMasker>>; 2],
    /// Whether the two differ (else one pass serves both).
    split: bool,
    /// What scrubs the client's commands, parameters and COPY input in the archive.
    commands: Option<Arc<SessionMasker>>,
    /// The maskers that hold column rules (then results need their columns planned).
    column_maskers: Arc<[Arc<SessionMasker>]>,
    pub catalog: Catalog,
}

/// A message's masked forms; `None` where it is unchanged.
#[derive(Debug, Default)]
pub struct MaskedMessage {
    /// What the client gets.
    pub client: Option<Bytes>,
    /// What the archive keeps, when it differs from what the client gets.
    record: Option<Bytes>,
    /// Whether the archive keeps what the client gets (one copy serves both).
    shared: bool,
}

impl MaskedMessage {
    /// What the archive keeps; `None`: the upstream's bytes as they came.
    pub fn for_record(&self) -> Option<&[u8]> {
        if self.shared {
            self.client.as_deref()
        } else {
            self.record.as_deref()
        }
    }
}

/// Per-result masking state: column plans, a COPY OUT plan, and the counts.
#[derive(Debug, Default)]
pub struct ResultMasking {
    plans: Option<[ColumnPlan; 2]>,
    copy: Option<[CopyPlan; 2]>,
    pub tally: Tally,
    /// The command's text, when column rules need the lineage of its columns.
    statement: Option<StatementText>,
    /// RowDescriptions seen so far (which statement of the command a result is).
    results: usize,
}

impl ResultMasking {
    /// The masking of the results of `statement`, when column rules read it.
    pub fn for_statement(statement: StatementText) -> Self {
        ResultMasking {
            statement: Some(statement),
            ..Default::default()
        }
    }

    /// A new RowDescription: plan the columns afresh.
    pub fn new_result(&mut self) {
        self.plans = None;
        self.results += 1;
    }
}

impl PgMasking {
    /// The session's masking, with the catalog its column rules need.
    pub fn new(masking: SessionMasking, catalog: Catalog) -> Self {
        let maskers = [masking.client.clone(), masking.for_record().cloned()];
        let column_maskers: Vec<Arc<SessionMasker>> = maskers
            .iter()
            .flatten()
            .filter(|m| m.has_column_rules())
            .cloned()
            .collect();
        PgMasking {
            split: masking.split,
            maskers,
            column_maskers: column_maskers.into(),
            commands: masking.commands.clone(),
            catalog,
        }
    }

    /// Scrubs what the client sent from an event before it is recorded (the upstream
    /// got it as sent), and the command a result event repeats.
    pub fn scrub_client_event(&self, draft: &mut tapline_store::EventDraft, enc: PgEncoding) {
        if let Some(m) = &self.commands {
            command_scrub::scrub(m, draft, enc);
        }
    }

    /// Whether anything is masked at all.
    pub fn is_active(&self) -> bool {
        self.maskers.iter().any(Option::is_some)
    }

    /// Whether masking needs to know a result's columns (column rules apply), so a
    /// result the client did not describe is described upstream for the gateway.
    pub fn needs_columns(&self) -> bool {
        !self.column_maskers.is_empty()
    }

    /// The maskers of the session that hold column rules (shared, cheap to clone).
    pub fn column_maskers(&self) -> Arc<[Arc<SessionMasker>]> {
        self.column_maskers.clone()
    }

    /// Every masker of the session (for the catalog lookup).
    pub fn maskers(&self) -> impl Iterator<Item = &SessionMasker> {
        self.maskers.iter().flatten().map(|m| m.as_ref())
    }

    /// Runs `f` for the client and the archive (once, when they are the same); the
    /// archive's pass counts into `tally`.
    fn both<E>(
        &self,
        tally: &mut Tally,
        mut f: impl FnMut(&SessionMasker, usize, &mut Tally) -> Result<Option<Bytes>, E>,
    ) -> Result<MaskedMessage, E> {
        if !self.split {
            let Some(m) = &self.maskers[0] else {
                return Ok(MaskedMessage::default());
            };
            return Ok(MaskedMessage {
                client: f(m, 0, tally)?,
                record: None,
                shared: true,
            });
        }
        let client = match &self.maskers[0] {
            Some(m) => f(m, 0, &mut Tally::default())?,
            None => None,
        };
        let record = match &self.maskers[1] {
            Some(m) => f(m, 1, tally)?,
            None => None,
        };
        Ok(MaskedMessage {
            client,
            record,
            shared: false,
        })
    }

    /// Masks a DataRow of a result described by `cols` (if known).
    pub fn data_row(
        &self,
        rm: &mut ResultMasking,
        cols: Option<&[Column]>,
        raw: &[u8],
        enc: PgEncoding,
    ) -> Result<MaskedMessage, DecodeError> {
        let ResultMasking {
            plans,
            tally,
            statement,
            results,
            ..
        } = rm;
        let plans = plans.get_or_insert_with(|| {
            let cols = cols.unwrap_or_default();
            // The first result may come with no RowDescription (an Execute of a
            // portal described before).
            let result = results.saturating_sub(1);
            let mut plan_for = |m: &Option<Arc<SessionMasker>>| {
                let stmt = match statement.as_mut() {
                    Some(s) => s.columns(result),
                    None => StatementColumns::Unknown,
                };
                m.as_ref()
                    .map(|m| plan(m, &self.catalog, cols, stmt))
                    .unwrap_or_default()
            };
            [plan_for(&self.maskers[0]), plan_for(&self.maskers[1])]
        });
        self.both(tally, |m, i, t| {
            data_row::mask_data_row(m, &plans[i], raw, t, enc)
        })
    }

    /// Masks a FunctionCallResponse (a fast-path call's value) as a DataRow cell.
    pub fn function_result(
        &self,
        rm: &mut ResultMasking,
        raw: &[u8],
        enc: PgEncoding,
    ) -> Result<MaskedMessage, DecodeError> {
        let Some(row) = function_result::as_data_row(raw) else {
            return Ok(MaskedMessage::default());
        };
        let m = self.data_row(rm, None, &row, enc)?;
        let back = |b: Option<Bytes>| b.map(|d| function_result::from_data_row(&d));
        Ok(MaskedMessage {
            client: back(m.client),
            record: back(m.record),
            shared: m.shared,
        })
    }

    /// Starts a COPY OUT of `sql` (CopyOutResponse with its overall format).
    pub fn copy_out(&self, rm: &mut ResultMasking, sql: &str, binary: bool) {
        let plan_for = |m: &Option<Arc<SessionMasker>>| match m {
            Some(m) => plan_copy(m, &self.catalog, sql, binary),
            None => CopyPlan::unmasked(binary),
        };
        rm.copy = Some([plan_for(&self.maskers[0]), plan_for(&self.maskers[1])]);
    }

    /// Masks a CopyData row of the COPY OUT in progress (others pass unchanged).
    pub fn copy_data(&self, rm: &mut ResultMasking, raw: &[u8], enc: PgEncoding) -> MaskedMessage {
        let ResultMasking { copy, tally, .. } = rm;
        let Some(plans) = copy.as_mut() else {
            return MaskedMessage::default();
        };
        let masked = self.both(tally, |m, i, t| {
            Ok::<_, std::convert::Infallible>(plans[i].mask(m, raw, t, enc))
        });
        match masked {
            Ok(m) => m,
            Err(never) => match never {},
        }
    }

    /// Masks a NotificationResponse.
    pub fn notification(
        &self,
        tally: &mut Tally,
        raw: &[u8],
        enc: PgEncoding,
    ) -> Result<MaskedMessage, DecodeError> {
        self.both(tally, |m, _, t| notice::mask_notification(m, raw, t, enc))
    }

    /// Masks an ErrorResponse or NoticeResponse.
    pub fn notice(
        &self,
        tally: &mut Tally,
        raw: &[u8],
        enc: PgEncoding,
    ) -> Result<MaskedMessage, DecodeError> {
        self.both(tally, |m, _, t| notice::mask_notice(m, raw, t, enc))
    }
}
