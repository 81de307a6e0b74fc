//! The gateway's TLS identity towards clients: a certificate and key read from PEM
//! files, reloaded in place (SIGHUP) so renewing a certificate never drops a live
//! session, and optionally a CA whose client certificates the gateway accepts.
//!
//! A reload that fails (a half-written file, a key that does not match) keeps the
//! identity in use and says why; the next handshake after a good reload uses the new
//! certificate, sessions already up keep theirs.

use super::pem::{add_bundle, read_certificates};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// Where a listener's TLS identity lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CAs whose client certificates are accepted (PEM); `None`: no client
    /// certificates are asked for.
    pub client_ca: Option<PathBuf>,
    /// Whether a client must present a certificate when `client_ca` is set.
    pub client_cert_required: bool,
}

/// A listener's TLS server side.
pub struct ServerTls {
    files: TlsFiles,
    current: Arc<CurrentCert>,
    /// The listener's settings; each handshake gets a copy that serves one fixed key.
    config: Arc<ServerConfig>,
}

/// One handshake's side of the listener: its acceptor serves exactly `leaf`, even
/// when a reload lands in the middle, so SCRAM channel binding hashes the
/// certificate this client was actually shown.
pub struct Handshake {
    pub acceptor: TlsAcceptor,
    pub leaf: Option<CertificateDer<'static>>,
}

/// The key a single handshake serves.
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

/// The certificate handed to the next handshake.
struct CurrentCert(RwLock<Arc<CertifiedKey>>);

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl ServerTls {
    /// Reads the files and makes the TLS server configuration; `alpn` lists the
    /// protocols the listener agrees to (PostgreSQL's direct TLS needs `postgresql`).
    pub fn load(files: &TlsFiles, alpn: &[&[u8]]) -> Result<Self, String> {
        let current = Arc::new(CurrentCert(RwLock::new(Arc::new(certified_key(files)?))));
        let provider = Arc::new(ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                add_bundle(&mut roots, ca)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if files.client_cert_required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
            }
        };
        let mut config = builder.with_cert_resolver(current.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(ServerTls {
            files: files.clone(),
            current,
            config: Arc::new(config),
        })
    }

    /// The acceptor for the next handshake, and the certificate it will serve.
    pub fn handshake(&self) -> Handshake {
        let key = self
            .current
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let leaf = key.cert.first().cloned();
        let mut config = (*self.config).clone();
        config.cert_resolver = Arc::new(FixedCert(key));
        Handshake {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            leaf,
        }
    }

    /// Reads the certificate and key again; the next handshake uses them. On error
    /// the identity in use stays.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = Arc::new(certified_key(&self.files)?);
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The files this identity is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

fn certified_key(files: &TlsFiles) -> Result<CertifiedKey, String> {
    let certs = read_certificates(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        format!(
            "cannot read the private key in {}: {e}",
            files.key.display()
        )
    })?;
    let signing = ring::sign::any_supported_type(&key).map_err(|e| {
        format!(
            "{} is not a key tapline can sign with: {e}",
            files.key.display()
        )
    })?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        format!(
            "the key in {} does not belong to the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::stream::PeerStream;
    use crate::session::stream::tests::{connector_trusting, serve_one_handshake};
    use tokio_rustls::rustls::pki_types::ServerName;

    /// Writes a fresh self-signed certificate for `localhost` over `files`' paths.
    fn write_identity(files: &TlsFiles) -> CertificateDer<'static> {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, signing_key.serialize_pem()).unwrap();
        cert.der().clone()
    }

    /// The certificate a client is served by `acceptor`, seen from the client.
    async fn served_by(acceptor: TlsAcceptor, trust: &[CertificateDer<'static>]) -> Vec<u8> {
        let addr = serve_one_handshake(acceptor).await;
        let c = PeerStream::from(tokio::net::TcpStream::connect(addr).await.unwrap());
        let c = c
            .connect_tls(
                &connector_trusting(trust).unwrap(),
                ServerName::try_from("localhost").unwrap(),
            )
            .await
            .unwrap();
        c.tls().unwrap().peer_certificates[0].to_vec()
    }

    /// A reload between taking a handshake and running it changes nothing for that
    /// handshake: the certificate it serves is the one its channel binding hashes.
    #[tokio::test]
    async fn a_handshake_serves_the_certificate_it_was_taken_with_across_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("gw.crt"),
            key: dir.path().join("gw.key"),
            client_ca: None,
            client_cert_required: false,
        };
        let first = write_identity(&files);
        let tls = ServerTls::load(&files, &[]).unwrap();
        let before = tls.handshake();
        let second = write_identity(&files);
        tls.reload().unwrap();
        let after = tls.handshake();
        assert_eq!(before.leaf.as_ref(), Some(&first));
        assert_eq!(after.leaf.as_ref(), Some(&second));
        let trust = [first.clone(), second.clone()];
        assert_eq!(served_by(before.acceptor, &trust).await, first.to_vec());
        assert_eq!(served_by(after.acceptor, &trust).await, second.to_vec());
    }
}
