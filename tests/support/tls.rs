//! A throw-away certificate authority made with the `openssl` command, in a temp
//! dir: a CA certificate, and server or client certificates it signs for the names a
//! test gives, as PEM files the gateway, PostgreSQL and psql read.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and the certificates it issued, removed on drop.
pub struct TestCa {
    dir: tempfile::TempDir,
    pub cert: PathBuf,
    key: PathBuf,
    serial: std::cell::Cell<u32>,
}

/// One issued certificate and its key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (install the openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::Builder::new()
            .prefix("tapline-ca-")
            .tempdir()
            .unwrap();
        let cert = dir.path().join("ca.crt");
        let key = dir.path().join("ca.key");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        TestCa {
            dir,
            cert,
            key,
            serial: std::cell::Cell::new(1),
        }
    }

    /// A certificate for `cn` valid for `dns` names and `ips` (subjectAltName), good
    /// for both TLS servers and clients.
    pub fn issue(&self, file: &str, cn: &str, dns: &[&str], ips: &[&str]) -> Issued {
        self.issue_valid(file, cn, dns, ips, false)
    }

    /// As [`TestCa::issue`]; `expired` makes a certificate whose validity has ended.
    pub fn issue_valid(
        &self,
        file: &str,
        cn: &str,
        dns: &[&str],
        ips: &[&str],
        expired: bool,
    ) -> Issued {
        let d = self.dir.path();
        let key = d.join(format!("{file}.key"));
        let cert = d.join(format!("{file}.crt"));
        let csr = format!("{file}.csr");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                &csr,
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let mut sans: Vec<String> = dns.iter().map(|n| format!("DNS:{n}")).collect();
        sans.extend(ips.iter().map(|i| format!("IP:{i}")));
        let mut ext = String::from(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        if !sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
        }
        let ext_file = format!("{file}.ext");
        std::fs::write(d.join(&ext_file), ext).unwrap();
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let serial = format!("{serial}");
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-out",
            cert.to_str().unwrap(),
            "-extfile",
            &ext_file,
        ];
        // `-days -1` puts notAfter a day before notBefore (now): expired at once.
        if expired {
            args.extend(["-days", "-1"]);
        } else {
            args.extend(["-days", "2"]);
        }
        openssl(d, &args);
        Issued { cert, key }
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA's key, for tests that sign by hand.
    pub fn key(&self) -> &Path {
        &self.key
    }
}
