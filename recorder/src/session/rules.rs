//! The policy that applies to one session, picked once at its start from the
//! gateway's rules by connection and by the caller's groups. Rules changed later
//! (a reload) apply to sessions that start later; a live session keeps what it began
//! with, so its recording is judged by one policy throughout.

use crate::approvals::rules::SessionApprovals;
use crate::identity::Identity;
use crate::policy::guard::SessionGuard;
use crate::policy::mask::rules::SessionMasking;
use crate::protocol::TapContext;

/// The deny, approval and masking rules of one session.
pub struct SessionRules {
    /// The deny rules for this connection and caller.
    pub guard: SessionGuard,
    /// The approval rules for this connection and caller.
    pub approvals: SessionApprovals,
    /// What this session masks, for its client and for its archive.
    pub masking: SessionMasking,
}

impl SessionRules {
    /// The rules of `ctx`'s connection that apply to `identity`.
    pub fn pick(ctx: &TapContext, identity: &Identity) -> Self {
        let connection = ctx.connection.name.as_str();
        SessionRules {
            guard: ctx.deny.for_session(connection, &identity.groups),
            approvals: ctx.approvals.for_session(connection, &identity.groups),
            masking: ctx.masking.for_session(connection, &identity.groups),
        }
    }

    /// Whether any deny or approval rule applies: then what the tap cannot judge
    /// (raw function calls, encodings it cannot read) is refused rather than passed.
    pub fn guarded(&self) -> bool {
        !self.guard.is_empty() || !self.approvals.is_empty()
    }
}
