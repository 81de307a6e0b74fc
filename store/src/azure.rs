//! Azure Blob Storage through `object_store`'s `azure` client.
//!
//! Credentials come from object_store's standard environment variables (see the README
//! for each source). The one call object_store does not make, creating a container for
//! `tapline archive init`, is signed with object_store's own authorizer and sent with
//! its HTTP client, so every credential source works for it too.

use crate::error::StoreError;
use bytes::Bytes;
use object_store::azure::{AzureAuthorizer, AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::client::{HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::time::Duration;

/// The account Azurite and the storage emulator use.
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
/// Where Azurite listens unless `AZURITE_BLOB_STORAGE_URL` says otherwise.
const EMULATOR_URL: &str = "http://127.0.0.1:10000";

/// Checks a container name against Azure's rules, so a typo is caught before a request.
pub fn check_container_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(format!(
            "`{name}` is not a valid container name: use 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn builder(container: &str) -> MicrosoftAzureBuilder {
    MicrosoftAzureBuilder::from_env()
        .with_container_name(container)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
        })
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(120)),
        )
}

fn location(container: &str) -> String {
    format!("az://{container}")
}

/// Builds the client for one container from the environment.
pub fn open_container(container: &str) -> Result<MicrosoftAzure, StoreError> {
    builder(container)
        .build()
        .map_err(|e| StoreError::BadLocation {
            location: location(container),
            reason: format!(
                "{e}; set AZURE_STORAGE_ACCOUNT_NAME with a credential (see `Azure Blob archives` in the README), or AZURE_STORAGE_USE_EMULATOR=true for Azurite"
            ),
        })
}

/// What `archive init` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerInit {
    Created,
    AlreadyExisted,
}

/// Creates the container if it is missing; an existing one is left as it is.
pub async fn create_container(container: &str) -> Result<ContainerInit, StoreError> {
    let b = builder(container);
    let store = open_container(container)?;
    let emulator = b
        .get_config_value(&AzureConfigKey::UseEmulator)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let account = b
        .get_config_value(&AzureConfigKey::AccountName)
        .unwrap_or_else(|| EMULATOR_ACCOUNT.to_string());
    let url = if emulator {
        let base = std::env::var("AZURITE_BLOB_STORAGE_URL").unwrap_or(EMULATOR_URL.into());
        format!("{}/{account}/{container}", base.trim_end_matches('/'))
    } else {
        let base = b
            .get_config_value(&AzureConfigKey::Endpoint)
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        format!("{}/{container}", base.trim_end_matches('/'))
    };
    let fail = |reason: String| StoreError::ArchiveInit {
        location: location(container),
        reason,
    };
    let credential = store
        .credentials()
        .get_credential()
        .await
        .map_err(|e| fail(format!("no usable credential: {e}")))?;
    let mut request = http::Request::builder()
        .method(http::Method::PUT)
        .uri(format!("{url}?restype=container"))
        .header(http::header::CONTENT_LENGTH, "0")
        .body(HttpRequestBody::from(Bytes::new()))
        .map_err(|e| fail(format!("cannot build the request for {url}: {e}")))?;
    AzureAuthorizer::new(&credential, &account).authorize(&mut request);
    let client = ReqwestConnector::default()
        .connect(
            &ClientOptions::new()
                .with_allow_http(emulator)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(30)),
        )
        .map_err(|e| fail(e.to_string()))?;
    let response = client.execute(request).await.map_err(|e| {
        let text = format!("{e:?}");
        if text.contains("dns error") || text.contains("failed to lookup") {
            fail(format!(
                "no such storage account: `{account}` does not resolve ({url}); check AZURE_STORAGE_ACCOUNT_NAME"
            ))
        } else {
            fail(format!("cannot reach {url}: {e}"))
        }
    })?;
    let status = response.status();
    let body = response.into_body().bytes().await.unwrap_or_default();
    let body = String::from_utf8_lossy(&body);
    let code = xml_field(&body, "Code").unwrap_or_default();
    let message = xml_field(&body, "Message")
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let said = if message.is_empty() {
        format!("{status} {code}")
    } else {
        format!("{status} {code}: {message}")
    };
    match status.as_u16() {
        200..=299 => Ok(ContainerInit::Created),
        409 if code == "ContainerAlreadyExists" => Ok(ContainerInit::AlreadyExisted),
        403 if code == "AuthenticationFailed" || message.contains("failed to authenticate") => {
            Err(fail(format!(
                "bad credentials: account `{account}` refused the request's signature ({said}); check AZURE_STORAGE_ACCOUNT_KEY, the SAS token or the service principal"
            )))
        }
        403 => Err(fail(format!(
            "no permission to create containers in account `{account}` ({said}); grant the identity `Storage Blob Data Contributor`, or have an administrator create the container"
        ))),
        404 => Err(fail(format!(
            "no such storage account `{account}` at {url} ({said}); check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ENDPOINT"
        ))),
        _ => Err(fail(format!("the account answered {said}"))),
    }
}

/// An object_store error from Azure, said the way an operator can act on: the
/// service's error code and message, and what to do for the usual causes, instead of
/// the nested request dump.
pub fn describe_error(text: &str) -> String {
    let code = xml_field(text, "Code").unwrap_or_default();
    let message = xml_field(text, "Message")
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let hint = match code.as_str() {
        "ContainerNotFound" => Some(
            "the container does not exist: create it with `tapline archive init --archive az://CONTAINER/PREFIX`, or check the container name",
        ),
        "AuthenticationFailed" => Some(
            "bad credentials: check AZURE_STORAGE_ACCOUNT_KEY, the SAS token or the service principal",
        ),
        "AuthorizationFailure" if message.contains("failed to authenticate") => Some(
            "bad credentials: check AZURE_STORAGE_ACCOUNT_KEY, the SAS token or the service principal",
        ),
        "AuthorizationFailure" | "AuthorizationPermissionMismatch" => Some(
            "no permission: grant the identity `Storage Blob Data Contributor` (gateways) or `Storage Blob Data Reader` (query, sessions, verify) on the container",
        ),
        "ResourceNotFound" => Some("no such storage account: check AZURE_STORAGE_ACCOUNT_NAME"),
        _ => None,
    };
    match hint {
        Some(h) => format!("{h} ({code}: {message})"),
        None if !code.is_empty() => format!("{code}: {message}"),
        // Not an answer from the service (unreachable, DNS, TLS): its first line says it.
        None => text.lines().next().unwrap_or(text).to_string(),
    }
}

/// One `<Field>` of an Azure error body.
fn xml_field(body: &str, field: &str) -> Option<String> {
    let open = format!("<{field}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{field}>"))? + start;
    Some(body[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_azure_rules() {
        assert!(check_container_name("tapline-archive").is_ok());
        for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "with_underscore"] {
            assert!(check_container_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_codes_are_read_from_the_body() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code><Message>x</Message></Error>";
        assert_eq!(
            xml_field(body, "Code").as_deref(),
            Some("AuthenticationFailed")
        );
        assert_eq!(xml_field(body, "Message").as_deref(), Some("x"));
        assert_eq!(xml_field("nothing", "Code"), None);
    }
}
