//! Secrets the gateway holds (upstream passwords, later keys): read once from an
//! environment variable or a file, and never printed.

use super::{ConfigError, KeyPrefix};
use std::path::Path;

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself; call only where it is sent upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads the secret named by one of two keys, an environment variable or a file
    /// (its trailing newline dropped); neither set is `None`, both set is an error.
    pub fn from_env_or_file(
        at: KeyPrefix<'_>,
        (env_key, env): (&str, Option<&str>),
        (file_key, file): (&str, Option<&Path>),
    ) -> Result<Option<Secret>, ConfigError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(at.err(
                env_key,
                format!("and {file_key} are both set"),
                "keep only one",
            )),
            (Some(var), None) => std::env::var(var).map(|v| Some(Secret(v))).map_err(|_| {
                at.err(
                    env_key,
                    format!("names ${var}, which is not set"),
                    "export the variable before starting the gateway",
                )
            }),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    at.err(
                        file_key,
                        format!("{} cannot be read ({e})", path.display()),
                        "check the path and its permissions",
                    )
                })?;
                Ok(Some(Secret(
                    text.trim_end_matches(['\r', '\n']).to_string(),
                )))
            }
            (None, None) => Ok(None),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}
