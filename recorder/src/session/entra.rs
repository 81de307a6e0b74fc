//! The gateway's own Microsoft Entra ID identity towards an upstream: Azure Database
//! for PostgreSQL (and for MySQL) accepts an Entra access token as the password. The
//! token is the gateway's (its managed identity, its AKS workload identity, or a
//! service principal), never the caller's, so no caller holds a credential that works
//! on the database directly.
//!
//! Tokens come from the official `azure_identity` crate, which caches them and asks
//! for a new one five minutes before expiry; the gateway asks at each upstream login,
//! so a login never presents an expired token. The token goes only into the upstream
//! password message: it is never logged, recorded or shown to a client.

use super::pem::{add_bundle, add_system_roots};
use crate::config::{ConfigError, KeyPrefix, Secret};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::rustls;

/// The scope of Azure Database for PostgreSQL and for MySQL tokens.
pub const AZURE_DATABASE_SCOPE: &str = "https://ossrdbms-aad.database.windows.net/.default";

/// `[connections.entra]`: how the gateway gets its token.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EntraSection {
    /// "managed_identity" (default), "workload_identity" or "client_secret".
    pub credential: Option<String>,
    /// The token's scope [default: Azure Database's].
    pub scope: Option<String>,
    /// The tenant (client_secret; workload_identity reads AZURE_TENANT_ID otherwise).
    pub tenant_id: Option<String>,
    /// The application (client) id: the service principal's, the workload's, or a
    /// user-assigned managed identity's.
    pub client_id: Option<String>,
    /// The service principal's secret, from a variable or a file.
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// The Entra authority [default: https://login.microsoftonline.com]; sovereign
    /// clouds and Azure Stack have their own.
    pub authority_host: Option<String>,
    /// Extra roots (PEM) trusted for the authority, besides the system's.
    pub authority_ca: Option<PathBuf>,
}

/// Where the gateway's Entra token comes from, validated.
pub struct EntraToken {
    credential: Arc<dyn TokenCredential>,
    scope: String,
    /// What the log says about the credential (never a secret).
    describe: String,
}

impl fmt::Debug for EntraToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraToken")
            .field("credential", &self.describe)
            .field("scope", &self.scope)
            .finish()
    }
}

impl EntraToken {
    /// The credential `s` describes, its keys reported under `at`.
    pub fn from_section(s: &EntraSection, at: KeyPrefix<'_>) -> Result<Self, ConfigError> {
        let scope = s
            .scope
            .clone()
            .unwrap_or_else(|| AZURE_DATABASE_SCOPE.to_string());
        let options = client_options(s, at)?;
        let failed = |e: azure_core::Error| {
            at.err(
                "credential",
                format!("the Entra credential cannot be set up: {e}"),
                "check tenant_id, client_id and the credential's environment",
            )
        };
        let (credential, describe): (Arc<dyn TokenCredential>, String) =
            match s.credential.as_deref().unwrap_or("managed_identity") {
                "managed_identity" => (
                    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                        user_assigned_id: s.client_id.clone().map(UserAssignedId::ClientId),
                        client_options: options,
                    }))
                    .map_err(failed)?,
                    format!(
                        "managed identity{}",
                        s.client_id
                            .as_deref()
                            .map(|c| format!(" (client id {c})"))
                            .unwrap_or_default()
                    ),
                ),
                "workload_identity" => {
                    let mut o = WorkloadIdentityCredentialOptions {
                        client_id: s.client_id.clone(),
                        tenant_id: s.tenant_id.clone(),
                        ..Default::default()
                    };
                    o.credential_options.client_options = options;
                    (
                        WorkloadIdentityCredential::new(Some(o)).map_err(failed)?,
                        "workload identity".to_string(),
                    )
                }
                "client_secret" => {
                    let tenant = s.tenant_id.as_deref().ok_or_else(|| {
                        at.err(
                            "tenant_id",
                            "is missing",
                            "set the service principal's tenant id",
                        )
                    })?;
                    let client = s.client_id.clone().ok_or_else(|| {
                        at.err(
                            "client_id",
                            "is missing",
                            "set the service principal's application (client) id",
                        )
                    })?;
                    let secret = Secret::from_env_or_file(
                        at,
                        ("client_secret_env", s.client_secret_env.as_deref()),
                        ("client_secret_file", s.client_secret_file.as_deref()),
                    )?
                    .ok_or_else(|| {
                        at.err(
                            "client_secret_env",
                            "is missing (and so is client_secret_file)",
                            "name the variable or file holding the service principal's secret",
                        )
                    })?;
                    (
                        ClientSecretCredential::new(
                            tenant,
                            client.clone(),
                            azure_core::credentials::Secret::new(secret.expose().to_string()),
                            Some(ClientSecretCredentialOptions {
                                client_options: options,
                            }),
                        )
                        .map_err(failed)?,
                        format!("service principal {client} in tenant {tenant}"),
                    )
                }
                other => {
                    return Err(at.err(
                        "credential",
                        format!("`{other}` is not an Entra credential tapline uses"),
                        "use managed_identity, workload_identity or client_secret",
                    ));
                }
            };
        Ok(EntraToken {
            credential,
            scope,
            describe,
        })
    }

    /// A token valid for at least five more minutes: the cached one, or a new one.
    pub async fn token(&self) -> Result<Secret, String> {
        self.credential
            .get_token(&[self.scope.as_str()], None)
            .await
            .map(|t| Secret::new(t.token.secret().to_string()))
            .map_err(|e| {
                format!(
                    "the gateway could not get its Entra ID token ({}, scope {}): {e}",
                    self.describe, self.scope
                )
            })
    }
}

/// The HTTP client the credential talks to the authority with: rustls (ring) with
/// the system's roots and `authority_ca`, and the authority host.
fn client_options(s: &EntraSection, at: KeyPrefix<'_>) -> Result<ClientOptions, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    add_system_roots(&mut roots);
    if let Some(ca) = &s.authority_ca {
        add_bundle(&mut roots, ca).map_err(|problem| {
            at.err(
                "authority_ca",
                problem,
                "point it at a PEM bundle of CA certificates",
            )
        })?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| at.err("authority_ca", e.to_string(), "report this"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let http = reqwest_entra::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| at.err("authority_host", e.to_string(), "report this"))?;
    // A few quick retries: a login waits on this, within the upstream's timeout.
    let retry = ExponentialRetryOptions {
        max_retries: 3,
        max_total_elapsed: azure_core::time::Duration::seconds(6),
        ..Default::default()
    };
    let mut options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        retry: RetryOptions::exponential(retry),
        ..Default::default()
    };
    if let Some(host) = &s.authority_host {
        if !host.starts_with("https://") {
            return Err(at.err(
                "authority_host",
                format!("`{host}` is not an https URL"),
                "tokens are fetched over TLS only, e.g. https://login.microsoftonline.us",
            ));
        }
        let mut custom = CustomConfiguration::default();
        custom.authority_host = host.clone();
        options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    }
    Ok(options)
}
