//! Whether a listener speaks TLS to its clients: `tls = "required" | "optional" |
//! "off"`, per connection.

/// A listener's TLS policy towards clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// No TLS: a client asking for it is told no, and goes on in clear or leaves.
    #[default]
    Off,
    /// TLS for clients that ask for it; clear text for the rest.
    Optional,
    /// TLS or nothing: a client in clear text is refused before it authenticates.
    Required,
}

impl TlsMode {
    /// Parses the config's words.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(TlsMode::Off),
            "optional" => Some(TlsMode::Optional),
            "required" => Some(TlsMode::Required),
            _ => None,
        }
    }

    /// The config's word.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Optional => "optional",
            TlsMode::Required => "required",
        }
    }
}
