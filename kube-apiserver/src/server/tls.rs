//! TLS for the secure port: load the operator's serving certificate or generate (and keep) a
//! self-signed CA plus serving certificate in `--cert-dir`, and build the rustls server config
//! (ALPN h2 + http/1.1, optional client-certificate verification against `--client-ca-file`).
//!
//! Also small certificate helpers (`generate_ca`, `generate_client_cert`,
//! `generate_serving_cert`) for tests and scripts that need credentials for this server.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use time::OffsetDateTime;

use crate::config::Config;

/// File names inside `--cert-dir` (upstream uses the same serving pair names).
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
pub const SERVING_KEY_FILE: &str = "apiserver.key";
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";

const CA_VALIDITY_DAYS: i64 = 3650;
const LEAF_VALIDITY_DAYS: i64 = 365;
/// Backdate `notBefore` a little so clients with a slightly late clock accept fresh certs.
const BACKDATE: time::Duration = time::Duration::hours(1);
/// The OID of the X.520 organizationName attribute.
const ORG_NAME_OID: [u64; 4] = [2, 5, 4, 10];

/// Everything the serving layer needs from TLS setup.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub server_config: Arc<ServerConfig>,
    /// The serving certificate chain in use.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA that signed a generated serving certificate (what clients should trust);
    /// `None` when the operator supplied the serving pair.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: invalid PEM: {source}")]
    Pem { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("{0}: no certificate found")]
    NoCertificates(PathBuf),
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    IncompletePair,
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid certificate input: {0}")]
    Invalid(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client CA verifier: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_path_buf(), source }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Load the configured serving pair, or generate/reuse a self-signed one in `cfg.cert_dir`.
/// Generated certificates cover the default names plus the advertise address and the first
/// IP of every service CIDR (the in-cluster `kubernetes` Service IP).
pub fn load_or_generate(cfg: &Config) -> Result<TlsMaterial, TlsError> {
    let mut extra = vec![cfg.advertise_address.to_string()];
    for cidr in cfg.service_cluster_ip_range.split(',') {
        if let Some(ip) = first_ip_of_cidr(cidr.trim()) {
            extra.push(ip.to_string());
        }
    }
    load_or_generate_with_sans(cfg, &extra)
}

/// Like [`load_or_generate`], with the extra SANs (DNS names or IPs) chosen by the caller.
pub fn load_or_generate_with_sans(cfg: &Config, extra_sans: &[String]) -> Result<TlsMaterial, TlsError> {
    match (&cfg.tls_cert_file, &cfg.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert)?;
            let key_der = load_key(key)?;
            let server_config = build_server_config(chain, key_der, cfg.client_ca_file.as_deref())?;
            tracing::info!(cert = %cert.display(), "serving with the configured certificate");
            Ok(TlsMaterial { server_config, cert_file: cert.clone(), key_file: key.clone(), ca_file: None })
        }
        (None, None) => {
            let sans = default_sans(extra_sans);
            let dir = &cfg.cert_dir;
            let cert_file = dir.join(SERVING_CERT_FILE);
            let key_file = dir.join(SERVING_KEY_FILE);
            let ca_file = dir.join(CA_CERT_FILE);
            if let Some(server_config) = try_reuse(&cert_file, &key_file, &sans, cfg.client_ca_file.as_deref()) {
                tracing::info!(cert = %cert_file.display(), "reusing the self-signed serving certificate");
                return Ok(TlsMaterial { server_config, cert_file, key_file, ca_file: Some(ca_file) });
            }
            generate_into(dir, &sans)?;
            let server_config =
                build_server_config(load_certs(&cert_file)?, load_key(&key_file)?, cfg.client_ca_file.as_deref())?;
            tracing::info!(cert = %cert_file.display(), sans = ?sans, "generated a self-signed serving certificate");
            Ok(TlsMaterial { server_config, cert_file, key_file, ca_file: Some(ca_file) })
        }
        _ => Err(TlsError::IncompletePair),
    }
}

/// The names every generated serving certificate carries, followed by `extra` (deduplicated).
pub fn default_sans(extra: &[String]) -> Vec<String> {
    let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"].iter().map(|s| s.to_string()).collect();
    if let Some(host) = local_hostname() {
        sans.push(host);
    }
    for name in ["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"] {
        sans.push(name.to_string());
    }
    sans.extend(extra.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(normalize_san(s)));
    sans
}

fn normalize_san(s: &str) -> String {
    match s.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => s.to_ascii_lowercase(),
    }
}

/// The machine's host name, when it is usable as a DNS SAN.
fn local_hostname() -> Option<String> {
    let name = hostname::get().ok()?.into_string().ok()?.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    valid.then_some(name)
}

/// First usable address of a CIDR (network address + 1), e.g. `10.0.0.0/24` -> `10.0.0.1`.
pub fn first_ip_of_cidr(cidr: &str) -> Option<IpAddr> {
    let (addr, prefix) = cidr.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    match addr {
        IpAddr::V4(v4) if prefix < 32 => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            Some(IpAddr::V4(std::net::Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) if prefix < 128 => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            Some(IpAddr::V6(std::net::Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
        _ => None,
    }
}

/// Read every certificate of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = fs::read(path).map_err(io_err(path))?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem { path: path.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates(path.to_path_buf()));
    }
    Ok(certs)
}

/// Read the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = fs::read(path).map_err(io_err(path))?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|source| TlsError::Pem { path: path.to_path_buf(), source })
}

/// rustls server config: TLS 1.2/1.3, ALPN h2 then http/1.1, and with a client CA, verification
/// of presented client certificates while still accepting clients without one.
pub fn build_server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca_file: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::Invalid(format!("{}: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reuse a previously generated pair if it parses, is currently valid, covers `sans` and
/// loads into a server config (which also checks that key and certificate match).
fn try_reuse(cert: &Path, key: &Path, sans: &[String], client_ca: Option<&Path>) -> Option<Arc<ServerConfig>> {
    if !cert.exists() || !key.exists() {
        return None;
    }
    let chain = load_certs(cert).ok()?;
    match leaf_covers(&chain[0], sans) {
        Ok(()) => {}
        Err(why) => {
            tracing::info!(cert = %cert.display(), "regenerating the serving certificate: {why}");
            return None;
        }
    }
    let key = load_key(key).ok()?;
    match build_server_config(chain, key, client_ca) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(cert = %cert.display(), "regenerating the serving certificate: {e}");
            None
        }
    }
}

/// Ok when `der` is valid now and names every entry of `sans`.
fn leaf_covers(der: &CertificateDer<'_>, sans: &[String]) -> Result<(), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("unparsable: {e}"))?;
    if !cert.validity().is_valid() {
        return Err("expired or not yet valid".into());
    }
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    for san in sans {
        let covered = match san.parse::<IpAddr>() {
            Ok(ip) => ips.contains(&ip),
            Err(_) => dns.contains(&san.to_ascii_lowercase()),
        };
        if !covered {
            return Err(format!("it lacks the name {san}"));
        }
    }
    Ok(())
}

/// Write a serving pair for `sans` into `dir`, signed by the CA stored there (created if
/// missing or unusable).
fn generate_into(dir: &Path, sans: &[String]) -> Result<(), TlsError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let ca_cert_path = dir.join(CA_CERT_FILE);
    let ca_key_path = dir.join(CA_KEY_FILE);
    let existing_ca = match (fs::read_to_string(&ca_cert_path), fs::read_to_string(&ca_key_path)) {
        (Ok(cert), Ok(key)) if ca_usable(&cert, &key) => Some((cert, key)),
        _ => None,
    };
    let (ca_cert, ca_key) = match existing_ca {
        Some(pair) => pair,
        None => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let host = local_hostname().unwrap_or_else(|| "kube-apiserver".into());
            let pair = generate_ca(&format!("{host}-ca@{now}"))?;
            write_file(&ca_key_path, pair.1.as_bytes(), true)?;
            write_file(&ca_cert_path, pair.0.as_bytes(), false)?;
            pair
        }
    };
    let (cert, key) = generate_serving_cert(&ca_cert, &ca_key, "kube-apiserver", sans)?;
    write_file(&dir.join(SERVING_KEY_FILE), key.as_bytes(), true)?;
    // Serve the chain (leaf then CA) as upstream does for its self-signed bundle.
    write_file(&dir.join(SERVING_CERT_FILE), format!("{cert}{ca_cert}").as_bytes(), false)?;
    Ok(())
}

fn ca_usable(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(der) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else { return false };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { return false };
    let Ok(key) = KeyPair::from_pem(key_pem) else { return false };
    cert.validity().is_valid()
        && cert.is_ca()
        && cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw()
}

fn key_pair(pem: &str) -> Result<KeyPair, TlsError> {
    KeyPair::from_pem(pem).map_err(TlsError::Generate)
}

/// Write atomically (temp file + rename); `private` files get mode 0600.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01; // positive and non-zero
    SerialNumber::from_slice(&bytes)
}

fn base_params(cn: &str, validity_days: i64) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(validity_days);
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

/// A new self-signed CA; returns `(cert_pem, key_pem)`.
pub fn generate_ca(cn: &str) -> Result<(String, String), TlsError> {
    let mut params = base_params(cn, CA_VALIDITY_DAYS);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = false;
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issue(ca_cert_pem: &str, ca_key_pem: &str, params: CertificateParams) -> Result<(String, String), TlsError> {
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, key_pair(ca_key_pem)?)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A client certificate for user `cn` in groups `orgs`, signed by the given CA; returns
/// `(cert_pem, key_pem)`. At most two organizations are supported (rcgen keeps one value per
/// attribute type, the second goes in under the same OID spelled as a custom type).
pub fn generate_client_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    cn: &str,
    orgs: &[&str],
) -> Result<(String, String), TlsError> {
    if cn.is_empty() {
        return Err(TlsError::Invalid("empty common name".into()));
    }
    if orgs.len() > 2 {
        return Err(TlsError::Invalid(format!("at most 2 organizations are supported, got {}", orgs.len())));
    }
    let mut params = base_params(cn, LEAF_VALIDITY_DAYS);
    if let Some(first) = orgs.first() {
        params.distinguished_name.push(DnType::OrganizationName, *first);
    }
    if let Some(second) = orgs.get(1) {
        params.distinguished_name.push(DnType::CustomDnType(ORG_NAME_OID.to_vec()), *second);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue(ca_cert_pem, ca_key_pem, params)
}

/// A serving certificate for `sans` (DNS names or IP addresses), signed by the given CA;
/// returns `(cert_pem, key_pem)`.
pub fn generate_serving_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    cn: &str,
    sans: &[String],
) -> Result<(String, String), TlsError> {
    let mut params = base_params(cn, LEAF_VALIDITY_DAYS);
    params.subject_alt_names = CertificateParams::new(sans.to_vec())?.subject_alt_names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue(ca_cert_pem, ca_key_pem, params)
}

/// How long a certificate stays valid from now (None if unparsable); for logs and tests.
pub fn remaining_validity(cert_pem: &str) -> Option<StdDuration> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    cert.validity().time_to_expiration()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use clap::Parser;

    fn config(dir: &Path, extra: &[&str]) -> Config {
        let mut args = vec![
            "kube-apiserver".to_string(),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            format!("--cert-dir={}", dir.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Options::parse_from(args).into_config().unwrap()
    }

    fn sans_of(pem: &str) -> (Vec<String>, Vec<IpAddr>) {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let mut dns = vec![];
        let mut ips = vec![];
        for n in &cert.subject_alternative_name().unwrap().unwrap().value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 4 => {
                    ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
                }
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 16 => {
                    ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()))
                }
                _ => {}
            }
        }
        (dns, ips)
    }

    #[test]
    fn first_ip() {
        assert_eq!(first_ip_of_cidr("10.0.0.0/24"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(first_ip_of_cidr("10.96.5.7/12"), Some("10.96.0.1".parse().unwrap()));
        assert_eq!(first_ip_of_cidr("fd00::/108"), Some("fd00::1".parse().unwrap()));
        assert_eq!(first_ip_of_cidr("10.0.0.0"), None);
        assert_eq!(first_ip_of_cidr("10.0.0.0/32"), None);
        assert_eq!(first_ip_of_cidr("nonsense/8"), None);
    }

    #[test]
    fn generates_then_reuses_then_extends() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &["--advertise-address=192.0.2.10", "--service-cluster-ip-range=10.96.0.0/12"]);
        let m1 = load_or_generate(&cfg).unwrap();
        assert_eq!(m1.cert_file, dir.path().join(SERVING_CERT_FILE));
        assert_eq!(m1.ca_file.as_deref(), Some(dir.path().join(CA_CERT_FILE).as_path()));
        assert_eq!(m1.server_config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let cert1 = fs::read_to_string(&m1.cert_file).unwrap();
        let ca1 = fs::read_to_string(dir.path().join(CA_CERT_FILE)).unwrap();
        let (dns, ips) = sans_of(&cert1);
        for name in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(dns.contains(&name.to_string()), "{name} missing from {dns:?}");
        }
        for ip in ["127.0.0.1", "::1", "192.0.2.10", "10.96.0.1"] {
            assert!(ips.contains(&ip.parse().unwrap()), "{ip} missing from {ips:?}");
        }
        // The leaf chains to the CA written next to it.
        assert_eq!(CertificateDer::pem_slice_iter(cert1.as_bytes()).count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&m1.key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }

        // Same config: files reused byte for byte.
        let m2 = load_or_generate(&cfg).unwrap();
        assert_eq!(fs::read_to_string(&m2.cert_file).unwrap(), cert1);

        // A new advertise address: new serving cert, same CA.
        let cfg3 = config(dir.path(), &["--advertise-address=192.0.2.99"]);
        let m3 = load_or_generate(&cfg3).unwrap();
        let cert3 = fs::read_to_string(&m3.cert_file).unwrap();
        assert_ne!(cert3, cert1);
        assert!(sans_of(&cert3).1.contains(&"192.0.2.99".parse().unwrap()));
        assert_eq!(fs::read_to_string(dir.path().join(CA_CERT_FILE)).unwrap(), ca1);
        assert!(cert3.ends_with(&ca1));
    }

    #[test]
    fn corrupt_files_are_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &[]);
        load_or_generate(&cfg).unwrap();
        fs::write(dir.path().join(SERVING_KEY_FILE), "garbage").unwrap();
        let m = load_or_generate(&cfg).unwrap();
        assert!(load_key(&m.key_file).is_ok());
    }

    #[test]
    fn configured_pair_is_used_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, ca_key) = generate_ca("test-ca").unwrap();
        let (cert, key) = generate_serving_cert(&ca, &ca_key, "server", &["127.0.0.1".into()]).unwrap();
        let cert_path = dir.path().join("s.crt");
        let key_path = dir.path().join("s.key");
        fs::write(&cert_path, &cert).unwrap();
        fs::write(&key_path, &key).unwrap();
        let cert_dir = dir.path().join("generated");
        let cfg = config(
            &cert_dir,
            &[
                &format!("--tls-cert-file={}", cert_path.display()),
                &format!("--tls-private-key-file={}", key_path.display()),
            ],
        );
        let m = load_or_generate(&cfg).unwrap();
        assert_eq!(m.cert_file, cert_path);
        assert!(m.ca_file.is_none());
        assert!(!cert_dir.exists(), "nothing may be generated when a pair is configured");

        // A key that does not match the certificate is refused.
        let (_, other_key) = generate_ca("other").unwrap();
        fs::write(&key_path, other_key).unwrap();
        assert!(matches!(load_or_generate(&cfg), Err(TlsError::Rustls(_))));
        // Missing files are an error, not a panic.
        fs::remove_file(&cert_path).unwrap();
        assert!(matches!(load_or_generate(&cfg), Err(TlsError::Io { .. })));
    }

    #[test]
    fn client_ca_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        fs::write(&bad, "not a pem").unwrap();
        let cfg = config(&dir.path().join("certs"), &[&format!("--client-ca-file={}", bad.display())]);
        assert!(matches!(load_or_generate(&cfg), Err(TlsError::NoCertificates(_))));
    }

    #[test]
    fn client_cert_subject() {
        let (ca, ca_key) = generate_ca("ca").unwrap();
        let (cert, _) = generate_client_cert(&ca, &ca_key, "alice", &["devs", "ops"]).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = parsed.subject().iter_common_name().map(|a| a.as_str().unwrap().to_string()).collect();
        let orgs: Vec<_> = parsed.subject().iter_organization().map(|a| a.as_str().unwrap().to_string()).collect();
        assert_eq!(cn, ["alice"]);
        assert_eq!(orgs, ["devs", "ops"]);
        assert!(remaining_validity(&cert).unwrap() > StdDuration::from_secs(300 * 86400));
        assert!(generate_client_cert(&ca, &ca_key, "bob", &["a", "b", "c"]).is_err());
        assert!(generate_client_cert(&ca, "bad key", "bob", &[]).is_err());
        assert!(generate_client_cert("bad ca", &ca_key, "bob", &[]).is_err());
    }
}
