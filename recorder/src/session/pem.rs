//! Certificates and trust roots read from PEM files, for every TLS the gateway
//! speaks (its listeners, its upstreams, its Entra authority), so each says the same
//! thing about the same broken file.

use std::path::Path;
use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// Every certificate in a PEM file, in order; a file without one is an error.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<_, _>>())
        .map_err(|e| format!("cannot read the certificates in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Adds the CA certificates of a PEM bundle to `store`.
pub fn add_bundle(store: &mut RootCertStore, path: &Path) -> Result<(), String> {
    for cert in read_certificates(path)? {
        store.add(cert).map_err(|e| {
            format!(
                "{} holds a certificate that is not a CA: {e}",
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Adds the operating system's roots to `store`; how many it took.
pub fn add_system_roots(store: &mut RootCertStore) -> usize {
    let found = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(found.certs).0
}
