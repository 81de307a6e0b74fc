//! Notifications carry values past masking: `pg_notify(channel, payload)` delivers its
//! payload to listening sessions as a NotificationResponse, where no column rule can
//! tell which column it came from. A statement that calls it and mentions a masked
//! column (or a view's column computed from one) is refused before it runs.

use crate::policy::guard::{Denial, REFUSED_SQLSTATE};
use crate::policy::mask::derived_relations::SharedDerived;
use crate::policy::mask::lineage::{Lineage, notify_mentions};
use crate::policy::mask::session_masker::SessionMasker;
use crate::policy::sql::Sql;
use std::sync::Arc;

/// A statement that would send a notification mentioning a masked column: refused,
/// since the payload reaches listeners where no column rule can see it.
pub fn masked_notification(
    sql: &Sql<'_>,
    maskers: &[Arc<SessionMasker>],
    derived: &SharedDerived,
) -> Option<Denial> {
    if maskers.is_empty() {
        return None;
    }
    let mentions = notify_mentions(sql.statements().ok()?)?;
    // A view's column mentions what the view computes it from.
    let mentions = derived
        .read()
        .expand(&Lineage {
            sources: mentions,
            direct: false,
        })
        .sources;
    maskers.iter().find_map(|m| {
        mentions.iter().find_map(|s| {
            m.rule_for_source(s).map(|(r, what)| Denial {
                rule: m.columns[r].rule.clone(),
                message: format!(
                    "pg_notify would carry values of the masked column {what} past masking"
                ),
                matched: format!("notification of {what}"),
                sqlstate: REFUSED_SQLSTATE,
            })
        })
    })
}
