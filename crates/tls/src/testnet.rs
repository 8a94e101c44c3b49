//! A testnet's certificates: a CA made for the testnet and one certificate per server
//! (each node's API, the bank), valid for `127.0.0.1`, `::1` and `localhost`.
//!
//! The CA's private key is not written: no one can issue a further certificate the
//! testnet's clients would trust. A testnet that needs more servers is generated anew.

use super::TlsError;
use std::path::{Path, PathBuf};

/// The CA certificate's file name in the output directory (what clients pass as `--ca`).
pub const CA_FILE: &str = "ca.pem";

/// Where [`write_testnet_certs`] put the files.
#[derive(Clone, Debug)]
pub struct TestnetCerts {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    dir: PathBuf,
}

impl TestnetCerts {
    /// The certificate and key files of server `name`.
    pub fn server(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        )
    }
}

fn generate(error: rcgen::Error) -> TlsError {
    TlsError::Generate {
        reason: error.to_string(),
    }
}

fn write(path: &Path, text: &str, private: bool) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let error = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .map_err(error)?;
    file.write_all(text.as_bytes()).map_err(error)
}

/// Writes `out/ca.pem` and, for each name, `out/<name>.pem` and `out/<name>.key`
/// (mode 0600).
pub fn write_testnet_certs(out: &Path, names: &[&str]) -> Result<TestnetCerts, TlsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    std::fs::create_dir_all(out).map_err(|source| TlsError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let ca_key = KeyPair::generate().map_err(generate)?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "seisan testnet CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(generate)?;
    let ca = out.join(CA_FILE);
    write(&ca, &ca_cert.pem(), false)?;
    for name in names {
        let key = KeyPair::generate().map_err(generate)?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("seisan testnet {name}"));
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().map_err(generate)?),
            SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .map_err(generate)?;
        write(&out.join(format!("{name}.pem")), &cert.pem(), false)?;
        write(&out.join(format!("{name}.key")), &key.serialize_pem(), true)?;
    }
    Ok(TestnetCerts {
        ca,
        dir: out.to_path_buf(),
    })
}
