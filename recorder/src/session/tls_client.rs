//! TLS from the gateway to an upstream, with libpq's `sslmode` meanings, so an
//! operator who knows `sslmode=verify-full` knows what the gateway does:
//!
//! - `disable`: clear text only;
//! - `prefer`: TLS when the upstream offers it, unverified; clear text otherwise;
//! - `require`: TLS or nothing, unverified (it stops eavesdroppers, not impostors);
//! - `verify-ca`: TLS with a chain to a trusted root;
//! - `verify-full`: that, and the certificate names the host the gateway dialled.
//!
//! Trust roots are a PEM bundle, or the system's (`rustls-native-certs`). For Azure
//! Database for PostgreSQL, trust the roots Microsoft documents and not the
//! intermediates, which it rotates.

use super::pem::{add_bundle, add_system_roots};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's words.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's word.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the certificate is checked against trust roots.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Where the trust roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoots {
    /// A PEM bundle of CA certificates.
    File(PathBuf),
    /// The operating system's roots.
    System,
}

/// The gateway's TLS towards one upstream.
#[derive(Clone)]
pub struct UpstreamTls {
    pub mode: SslMode,
    connector: TlsConnector,
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("mode", &self.mode)
            .finish()
    }
}

impl UpstreamTls {
    /// The TLS configuration for `mode`; `roots` is needed by the verifying modes.
    pub fn new(mode: SslMode, roots: Option<&TrustRoots>) -> Result<Self, String> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, _) => {
                Arc::new(Unverified(provider))
            }
            (_, None) => {
                return Err(format!("sslmode {} needs trust roots", mode.as_str()));
            }
            (_, Some(roots)) => {
                let store = Arc::new(root_store(roots)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(store, provider)
                    .build()
                    .map_err(|e| e.to_string())?;
                if mode == SslMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(UpstreamTls {
            mode,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The connector handshakes use.
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }
}

fn root_store(roots: &TrustRoots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        TrustRoots::File(path) => add_bundle(&mut store, path)?,
        TrustRoots::System => {
            if add_system_roots(&mut store) == 0 {
                return Err(
                    "the system has no trust roots tapline can read; install ca-certificates or give a PEM bundle"
                        .into(),
                );
            }
        }
    }
    Ok(store)
}

/// Says why a handshake with the upstream failed, in words that name the fix.
pub fn explain(error: &std::io::Error, host: &str, mode: SslMode) -> String {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>());
    match tls {
        Some(Error::InvalidCertificate(c)) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the upstream's certificate is not valid for the host name `{host}` (sslmode {} checks it); connect by a name the certificate lists, or use verify-ca",
                mode.as_str()
            ),
            CertificateError::UnknownIssuer => "the upstream's certificate does not chain to a root in sslrootcert; give the CA that signs it (for Azure: DigiCert Global Root G2 and Microsoft RSA Root CA 2017)".to_string(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the upstream's certificate has expired; the upstream's operator must renew it".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the upstream's certificate is not valid yet (check both clocks)".to_string()
            }
            other => format!("the upstream's certificate was refused: {other:?}"),
        },
        Some(other) => format!("the TLS handshake with the upstream failed: {other}"),
        None => format!("the TLS handshake with the upstream failed: {error}"),
    }
}

/// `prefer` and `require`: any certificate, as libpq without a root file; the
/// handshake's signatures are still checked, so the session is at least encrypted to
/// whoever holds the key the certificate names.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must reach a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
