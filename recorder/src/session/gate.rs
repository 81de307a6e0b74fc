//! The identity gate: what client authentication concluded, and whether the caller
//! it identified may use the connection at all. Every tap asks it the same way, so a
//! connection's `allowed_groups` means the same thing whatever the protocol.

use super::end_reason::EndReason;
use crate::identity::{Identity, TokenRejection};

/// The gate's verdict on one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The caller proved who it is with `method` and may use the connection.
    Admitted {
        method: &'static str,
        identity: Identity,
    },
    /// The caller is refused; `why` is recorded and never holds a secret.
    Refused {
        /// Who the caller proved to be, or the name it claimed.
        identity: Identity,
        why: String,
        reason: EndReason,
    },
}

impl Admission {
    /// A caller whose authentication failed, recorded under the name it claimed.
    pub fn refused(login_name: &str, why: String, reason: EndReason) -> Self {
        Admission::Refused {
            identity: Identity {
                user: login_name.to_string(),
                ..Default::default()
            },
            why,
            reason,
        }
    }

    /// The identity the session is recorded under.
    pub fn identity(&self) -> &Identity {
        match self {
            Admission::Admitted { identity, .. } | Admission::Refused { identity, .. } => identity,
        }
    }
}

/// Lets an authenticated caller in when it is in one of `allowed_groups` (an empty
/// list allows every authenticated caller).
pub fn admit(method: &'static str, identity: Identity, allowed_groups: &[String]) -> Admission {
    if identity.in_any(allowed_groups) {
        return Admission::Admitted { method, identity };
    }
    let why = TokenRejection::GroupNotAllowed {
        user: identity.user.clone(),
        groups: identity.groups.clone(),
        allowed: allowed_groups.to_vec(),
    }
    .to_string();
    Admission::Refused {
        identity,
        why,
        reason: EndReason::AuthFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(groups: &[&str]) -> Identity {
        Identity {
            user: "ana".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_caller_outside_the_allowed_groups_is_refused_and_told_which_groups_would_do() {
        let allowed = vec!["dba".to_string()];
        match admit("oidc", caller(&["dev"]), &allowed) {
            Admission::Refused {
                why,
                reason,
                identity,
            } => {
                assert_eq!(reason, EndReason::AuthFailed);
                assert_eq!(identity.user, "ana");
                assert!(why.contains("dba"), "{why}");
            }
            other => panic!("admitted: {other:?}"),
        }
        assert!(matches!(
            admit("oidc", caller(&["dev", "dba"]), &allowed),
            Admission::Admitted { method: "oidc", .. }
        ));
        assert!(matches!(
            admit("trust", caller(&[]), &[]),
            Admission::Admitted { .. }
        ));
    }
}
