//! Value detectors: what a sensitive value looks like wherever it appears in a result
//! (a cell, a COPY row, an error's detail). Each detector is a pattern, and where the
//! format has a checksum (card numbers, IBANs) or a strict grammar (IPv6, SSN ranges)
//! candidates are validated, so lookalikes are left alone.

pub mod iban;
pub mod luhn;

use regex::Regex;

/// Whether `candidate`'s digits (separators ignored) are a possible US SSN: nine
/// digits, area not 000, 666 or 9xx, group not 00, serial not 0000. Reads characters,
/// never byte offsets, so no input can make it slice inside a character.
pub fn ssn_ok(candidate: &str) -> bool {
    let d: Vec<u8> = candidate
        .chars()
        .filter_map(|c| c.to_digit(10).map(|v| v as u8))
        .collect();
    if d.len() != 9 {
        return false;
    }
    let area = &d[..3];
    area != [0, 0, 0]
        && area != [6, 6, 6]
        && area[0] != 9
        && d[3..5] != [0, 0]
        && d[5..] != [0, 0, 0, 0]
}

/// One kind of sensitive value.
#[derive(Debug, Clone)]
pub enum Detector {
    CreditCard,
    Email,
    UsSsn,
    Iban,
    Phone,
    Ipv4,
    Ipv6,
    Jwt,
    AwsAccessKeyId,
    AzureStorageKey,
    AzureSasToken,
    AzureConnectionString,
    PemPrivateKey,
    /// A pattern of the operator's, by name.
    Custom {
        name: String,
        pattern: String,
    },
}

impl Detector {
    /// The built-in detectors, by config name.
    pub const BUILT_IN: [&'static str; 13] = [
        "credit_card",
        "email",
        "us_ssn",
        "iban",
        "phone",
        "ipv4",
        "ipv6",
        "jwt",
        "aws_access_key_id",
        "azure_storage_key",
        "azure_sas_token",
        "azure_connection_string",
        "pem_private_key",
    ];

    /// Parses a built-in detector's config name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "credit_card" => Detector::CreditCard,
            "email" => Detector::Email,
            "us_ssn" => Detector::UsSsn,
            "iban" => Detector::Iban,
            "phone" => Detector::Phone,
            "ipv4" => Detector::Ipv4,
            "ipv6" => Detector::Ipv6,
            "jwt" => Detector::Jwt,
            "aws_access_key_id" => Detector::AwsAccessKeyId,
            "azure_storage_key" => Detector::AzureStorageKey,
            "azure_sas_token" => Detector::AzureSasToken,
            "azure_connection_string" => Detector::AzureConnectionString,
            "pem_private_key" => Detector::PemPrivateKey,
            _ => return None,
        })
    }

    /// The name recorded in an event's `masked` column (`detector:<name>`).
    pub fn name(&self) -> &str {
        match self {
            Detector::CreditCard => "credit_card",
            Detector::Email => "email",
            Detector::UsSsn => "us_ssn",
            Detector::Iban => "iban",
            Detector::Phone => "phone",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::Jwt => "jwt",
            Detector::AwsAccessKeyId => "aws_access_key_id",
            Detector::AzureStorageKey => "azure_storage_key",
            Detector::AzureSasToken => "azure_sas_token",
            Detector::AzureConnectionString => "azure_connection_string",
            Detector::PemPrivateKey => "pem_private_key",
            Detector::Custom { name, .. } => name,
        }
    }

    /// The pattern candidates are found with.
    pub fn pattern(&self) -> &str {
        match self {
            Detector::CreditCard => luhn::PATTERN,
            Detector::Email => r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            Detector::UsSsn => r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
            Detector::Iban => iban::PATTERN,
            Detector::Phone => {
                r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{3}\)|\b[0-9]{3})[ .-][0-9]{3}[ .-][0-9]{4}\b|\+[0-9]{8,15}\b"
            }
            Detector::Ipv4 => {
                r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b"
            }
            Detector::Ipv6 => r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}",
            Detector::Jwt => r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            Detector::AwsAccessKeyId => r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b",
            Detector::AzureStorageKey => r"[A-Za-z0-9+/]{86}==",
            Detector::AzureSasToken => r"\bsig=[A-Za-z0-9%+/]{16,}(?:%3D|=){0,2}",
            Detector::AzureConnectionString => {
                r"(?i)(?:DefaultEndpointsProtocol=[^;\s]+;)?AccountName=[^;\s]+;AccountKey=[^;\s]+(?:;[A-Za-z]+=[^;\s]+)*"
            }
            Detector::PemPrivateKey => {
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            }
            Detector::Custom { pattern, .. } => pattern,
        }
    }

    /// Whether a candidate the pattern found is really one of these values.
    pub fn confirm(&self, candidate: &str) -> bool {
        match self {
            Detector::CreditCard => luhn::luhn_ok(candidate),
            Detector::Iban => iban::iban_ok(candidate),
            Detector::UsSsn => ssn_ok(candidate),
            Detector::Ipv6 => {
                candidate.matches(':').count() >= 2
                    && candidate.parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => true,
        }
    }

    /// The compiled pattern; the error names the detector.
    pub fn compile(&self) -> Result<Regex, String> {
        Regex::new(self.pattern()).map_err(|e| format!("detector `{}`: {e}", self.name()))
    }
}
