//! Where a configuration came from, so an error names what the operator wrote: a key
//! and line of a TOML file, or a command-line flag.

use super::ConfigError;
use std::path::PathBuf;

/// Where values came from, so errors can name the key or the flag.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A TOML file.
    File(PathBuf),
    /// The quick command-line flags.
    Flags,
}

impl Origin {
    /// The source as errors name it.
    pub fn name(&self) -> String {
        match self {
            Origin::File(p) => p.display().to_string(),
            Origin::Flags => "command line".into(),
        }
    }

    /// Says `err` in this origin's words: its source named, and for the quick flags
    /// the flag in place of the file key the check reported.
    pub fn tell(&self, mut err: ConfigError) -> ConfigError {
        if let Origin::Flags = self {
            let field = err
                .key
                .strip_prefix("connections[0].")
                .or_else(|| err.key.strip_prefix("gateway."));
            if let Some(field) = field {
                err.key = if field.starts_with("users") || field == "client_auth" {
                    // Client secrets have no quick flag: they live in a config file, and
                    // what decides whether they are needed is the listen address.
                    "--listen".to_string()
                } else {
                    format!("--{}", field.replace('_', "-"))
                };
            }
        }
        err.in_source(self.name())
    }
}

/// The line of a byte offset, for parse errors.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
