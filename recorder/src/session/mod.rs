//! The protocol-neutral session core every tap uses.
//!
//! A tap knows its wire format and nothing else: it asks the [`gate`] whether the
//! caller it authenticated may use the connection, opens the recording through
//! [`lifecycle`] (session metadata, the `session_start` and `auth` events, the end
//! with an [`EndReason`]), applies the [`rules`] picked for the session, hands
//! commands that wait for a person to [`hold`], and reads and writes its peers
//! through a [`stream`] that can turn into TLS in band, with the listener's
//! [`tls_server`] identity when its [`tls_mode`] allows.

pub mod cert_identity;
pub mod end_reason;
pub mod entra;
pub mod gate;
pub mod hold;
pub mod lifecycle;
pub mod pem;
pub mod rules;
pub mod stream;
pub mod tls_client;
pub mod tls_mode;
pub mod tls_server;
pub mod who;

pub use end_reason::{EndReason, Side};
pub use gate::Admission;
pub use rules::SessionRules;
pub use stream::{PeerReader, PeerStream, PeerWriter, TlsInfo};
pub use tls_client::{SslMode, TrustRoots, UpstreamTls};
pub use tls_mode::TlsMode;
pub use tls_server::{ServerTls, TlsFiles};
pub use who::SessionWho;
