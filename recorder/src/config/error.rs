//! The one error every configuration check returns: which key is at fault, what is
//! wrong with it, and what to do, so an operator fixes it without reading our code.

use std::fmt;

/// A configuration problem, said so a person can fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or "command line"; empty until the check that read the source says.
    pub source_name: String,
    /// The key or flag at fault, e.g. `connections[0].listen` or `--listen`.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    /// A problem with `key`; the source is named by whoever read it.
    pub fn at(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            source_name: String::new(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// Names the source the key was read from, unless it is already named.
    pub fn in_source(mut self, source_name: impl Into<String>) -> Self {
        if self.source_name.is_empty() {
            self.source_name = source_name.into();
        }
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = if self.source_name.is_empty() {
            "configuration"
        } else {
            &self.source_name
        };
        write!(
            f,
            "{source}: `{}`: {}. {}",
            self.key, self.problem, self.fix
        )
    }
}

impl std::error::Error for ConfigError {}

/// Checks that take their keys under a prefix (`deny[2]`, `connections[0]`) build
/// their errors with this.
#[derive(Debug, Clone, Copy)]
pub struct KeyPrefix<'a>(pub &'a str);

impl KeyPrefix<'_> {
    /// The full key of `field` under the prefix.
    pub fn key(&self, field: &str) -> String {
        if self.0.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.0)
        }
    }

    /// A problem with `field` under the prefix.
    pub fn err(
        &self,
        field: &str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::at(self.key(field), problem, fix)
    }
}
