//! Why a session ended, as one closed set every tap shares.
//!
//! The archive keeps the reason as text (`sessions.end_reason`); auditors filter on
//! it, so each variant's text is fixed here once and taps never spell it themselves.

use std::fmt;

/// Which side of a session a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The caller's connection to the gateway.
    Client,
    /// The gateway's connection to the upstream.
    Upstream,
}

impl Side {
    /// The word used in recorded reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The client said goodbye or closed its connection.
    ClientClosed,
    /// The upstream closed its connection.
    UpstreamClosed,
    /// The gateway's shutdown grace ran out while the session was live.
    Shutdown,
    /// The client did not prove who it is, or is not allowed on the connection.
    AuthFailed,
    /// The client did not finish authenticating in time.
    AuthTimeout,
    /// The client asked for a database the connection does not offer.
    DatabaseRefused,
    /// The gateway could not log in upstream.
    UpstreamUnavailable,
    /// The session's character encoding is not one the policy allows.
    ClientEncodingRefused,
    /// A peer broke the protocol, or a setting the policy refuses took effect.
    ProtocolError { side: Side, message: String },
    /// A task of the session failed inside the gateway (a bug); the message is never
    /// the failure's own, which may quote a value the session carried.
    Internal { side: Side },
}

impl EndReason {
    /// Whether the end is worth a warning in the gateway's log.
    pub fn is_abnormal(&self) -> bool {
        matches!(
            self,
            EndReason::ProtocolError { .. } | EndReason::Internal { .. }
        )
    }

    /// The short name a query filters on (`end_reason LIKE 'protocol_error%'`).
    pub fn code(&self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client_closed",
            EndReason::UpstreamClosed => "upstream_closed",
            EndReason::Shutdown => "shutdown",
            EndReason::AuthFailed => "auth_failed",
            EndReason::AuthTimeout => "auth_timeout",
            EndReason::DatabaseRefused => "database_refused",
            EndReason::UpstreamUnavailable => "upstream_unavailable",
            EndReason::ClientEncodingRefused => "client_encoding_refused",
            EndReason::ProtocolError { .. } => "protocol_error",
            EndReason::Internal { .. } => "internal_error",
        }
    }
}

/// The text the archive records.
impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ProtocolError { side, message } => {
                write!(f, "protocol_error: {}: {message}", side.as_str())
            }
            EndReason::Internal { side } => write!(
                f,
                "internal_error: the {} side of the session failed inside the gateway",
                side.as_str()
            ),
            other => f.write_str(other.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_text_starts_with_the_code() {
        let all = [
            EndReason::ClientClosed,
            EndReason::UpstreamClosed,
            EndReason::Shutdown,
            EndReason::AuthFailed,
            EndReason::AuthTimeout,
            EndReason::DatabaseRefused,
            EndReason::UpstreamUnavailable,
            EndReason::ClientEncodingRefused,
            EndReason::ProtocolError {
                side: Side::Client,
                message: "bad length".into(),
            },
            EndReason::Internal {
                side: Side::Upstream,
            },
        ];
        for r in &all {
            assert!(r.to_string().starts_with(r.code()), "{r}");
        }
        assert_eq!(
            all[8].to_string(),
            "protocol_error: client: bad length",
            "auditors filter on this text"
        );
        assert!(all[8].is_abnormal() && all[9].is_abnormal() && !all[0].is_abnormal());
    }
}
