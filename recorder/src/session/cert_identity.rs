//! Who a client certificate names. With `client_auth = "cert"` the listener has
//! already verified the certificate against its client CA during the handshake; this
//! reads the caller's name from the part of it the connection chose, as PostgreSQL's
//! `cert` method reads the CN.

use crate::identity::Identity;
use sha2::Digest;
use x509_parser::extensions::GeneralName;

/// The part of a client certificate that names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertField {
    /// The subject's common name.
    CommonName,
    /// The first e-mail address (rfc822Name) in subjectAltName.
    SanEmail,
    /// The first DNS name in subjectAltName (workloads named by host).
    SanDns,
    /// The first URI in subjectAltName (SPIFFE ids).
    SanUri,
}

impl CertField {
    /// Parses the config's words.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "cn" => CertField::CommonName,
            "san_email" => CertField::SanEmail,
            "san_dns" => CertField::SanDns,
            "san_uri" => CertField::SanUri,
            _ => return None,
        })
    }

    /// The config's word.
    pub fn as_str(self) -> &'static str {
        match self {
            CertField::CommonName => "cn",
            CertField::SanEmail => "san_email",
            CertField::SanDns => "san_dns",
            CertField::SanUri => "san_uri",
        }
    }
}

/// A certificate as an investigator matches it to the CA's log and to the
/// recording: `sha256:` and the hex SHA-256 of its DER.
pub fn fingerprint(cert: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(cert)))
}

/// The caller `cert` (DER, verified) names by `field`: its user, the issuer's name,
/// and the certificate's SHA-256 as the id an investigator matches to the CA's log.
pub fn identity_of(cert: &[u8], field: CertField) -> Result<Identity, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("the client certificate cannot be read: {e}"))?;
    let user = match field {
        CertField::CommonName => parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string),
        san => parsed
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|ext| {
                ext.value.general_names.iter().find_map(|n| match (san, n) {
                    (CertField::SanEmail, GeneralName::RFC822Name(v))
                    | (CertField::SanDns, GeneralName::DNSName(v))
                    | (CertField::SanUri, GeneralName::URI(v)) => Some(v.to_string()),
                    _ => None,
                })
            }),
    };
    let user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
        format!(
            "the client certificate (subject `{}`) has no {} to name its user",
            parsed.subject(),
            match field {
                CertField::CommonName => "common name",
                CertField::SanEmail => "e-mail subjectAltName",
                CertField::SanDns => "DNS subjectAltName",
                CertField::SanUri => "URI subjectAltName",
            }
        )
    })?;
    Ok(Identity {
        user,
        groups: Vec::new(),
        issuer: Some(parsed.issuer().to_string()),
        token_id: Some(fingerprint(cert)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn each_field_names_its_user() {
        let der = cert(
            "alice",
            vec![
                rcgen::SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
                rcgen::SanType::DnsName("batch-7.jobs.internal".try_into().unwrap()),
                rcgen::SanType::URI("spiffe://corp/agent/7".try_into().unwrap()),
            ],
        );
        let user = |f| identity_of(&der, f).unwrap().user;
        assert_eq!(user(CertField::CommonName), "alice");
        assert_eq!(user(CertField::SanEmail), "alice@example.com");
        assert_eq!(user(CertField::SanDns), "batch-7.jobs.internal");
        assert_eq!(user(CertField::SanUri), "spiffe://corp/agent/7");
        let id = identity_of(&der, CertField::CommonName).unwrap();
        assert!(id.token_id.unwrap().starts_with("sha256:"));
    }

    #[test]
    fn a_missing_field_or_garbage_is_refused_with_why() {
        let der = cert("bob", vec![]);
        let e = identity_of(&der, CertField::SanEmail).unwrap_err();
        assert!(e.contains("e-mail") && e.contains("bob"), "{e}");
        assert!(identity_of(b"\x30\x03\x02\x01\x00", CertField::CommonName).is_err());
    }
}
