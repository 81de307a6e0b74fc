//! Value detectors: what a sensitive value looks like wherever it appears in a result
//! (a cell, a COPY row, an error's detail). Card numbers, SSNs and emails are found by
//! scanners of their own that need no word boundary, because SQL can glue a value to
//! anything (`'9' || card`, `string_agg(card, '')`); the others are patterns (with
//! ASCII word boundaries, which keep the regex engine on its fast path for any text).
//! Where the format has a checksum (card numbers, IBANs) or a strict grammar (IPv6,
//! SSN ranges) candidates are validated, so lookalikes are left alone.

pub mod card_number;
pub mod email;
pub mod iban;
pub mod ssn;

use regex::Regex;

/// What a detector knows about the value it scans beyond its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// The value comes from a column about SSNs (by its name or its sources), so
    /// nine bare digits are one.
    pub ssn_column: bool,
}

/// What a value holds that the scanning detectors cannot do without, counted in one
/// pass over its bytes, so most values cost them nothing more.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    /// ASCII digits (the text is folded, so digits of any script count).
    pub digits: usize,
    pub at_sign: bool,
}

impl Hints {
    /// Counts `text` (folded).
    pub fn of(text: &str) -> Self {
        let mut h = Hints::default();
        for &b in text.as_bytes() {
            h.digits += b.is_ascii_digit() as usize;
            h.at_sign |= b == b'@';
        }
        h
    }
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

    /// The pattern candidates are found with; `None` for the detectors that scan
    /// with their own code (card numbers, SSNs, emails).
    pub fn pattern(&self) -> Option<&str> {
        Some(match self {
            Detector::CreditCard | Detector::Email | Detector::UsSsn => return None,
            Detector::Iban => iban::PATTERN,
            Detector::Phone => {
                r"(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{3}\)|(?-u:\b)[0-9]{3})[ .-][0-9]{3}[ .-][0-9]{4}(?-u:\b)|\+[0-9]{8,15}(?-u:\b)"
            }
            Detector::Ipv4 => {
                r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?-u:\b)"
            }
            Detector::Ipv6 => r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}",
            Detector::Jwt => r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            Detector::AwsAccessKeyId => r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?-u:\b)",
            Detector::AzureStorageKey => r"[A-Za-z0-9+/]{86}==",
            Detector::AzureSasToken => r"(?-u:\b)sig=[A-Za-z0-9%+/]{16,}(?:%3D|=){0,2}",
            Detector::AzureConnectionString => {
                r"(?i)(?:DefaultEndpointsProtocol=[^;\s]+;)?AccountName=[^;\s]+;AccountKey=[^;\s]+(?:;[A-Za-z]+=[^;\s]+)*"
            }
            Detector::PemPrivateKey => {
                r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
            }
            Detector::Custom { pattern, .. } => pattern,
        })
    }

    /// Appends what a scanning detector finds in `text` (folded, counted in `hints`)
    /// to `out`; pattern detectors find nothing here.
    pub fn scan(&self, text: &str, hints: Hints, context: Context, out: &mut Vec<(usize, usize)>) {
        match self {
            Detector::CreditCard if hints.digits >= 13 => card_number::find(text, out),
            Detector::Email if hints.at_sign => email::find(text, out),
            Detector::UsSsn if hints.digits >= 9 => ssn::find(text, context.ssn_column, out),
            _ => {}
        }
    }

    /// Whether a candidate the pattern found is really one of these values.
    pub fn confirm(&self, candidate: &str) -> bool {
        match self {
            Detector::Iban => iban::iban_ok(candidate),
            Detector::Ipv6 => {
                candidate.matches(':').count() >= 2
                    && candidate.parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => true,
        }
    }

    /// The compiled pattern (`None` for a scanning detector); the error names the
    /// detector.
    pub fn compile(&self) -> Result<Option<Regex>, String> {
        self.pattern()
            .map(|p| Regex::new(p).map_err(|e| format!("detector `{}`: {e}", self.name())))
            .transpose()
    }
}
