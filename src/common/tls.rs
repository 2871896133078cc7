//! TLS for every client: the checks of the `ssl*` options, rustls with the ring provider
//! (no process-wide default is installed), the handshake, and its failures in words.

use crate::config::shared::SharedKeys;
#[cfg(feature = "tls")]
use rustls::pki_types::pem::PemObject;
#[cfg(any(feature = "tls", feature = "http"))]
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
#[cfg(any(feature = "tls", feature = "http"))]
use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    DigitallySignedStruct,
};
#[cfg(feature = "tls")]
use rustls::{pki_types::PrivateKeyDer, CertificateError, ClientConfig, RootCertStore};
use serde::de::MapAccess;
use serde::ser::SerializeStruct;
use std::path::{Path, PathBuf};
#[cfg(any(feature = "tls", feature = "http"))]
use std::sync::Arc;

/// The TLS keys of every client's options, as users write them.
#[derive(Debug, Clone, Default)]
pub struct TlsKeys {
    pub ssl: bool,
    /// PEM file with the CA certificates that may sign the server's certificate. Without it
    /// the Mozilla root set is used.
    pub ssl_ca_certs: Option<PathBuf>,
    /// PEM client certificate (chain) and key, for servers that ask for one.
    pub ssl_certfile: Option<PathBuf>,
    pub ssl_keyfile: Option<PathBuf>,
    /// Accepts any server certificate. For tests only: logs a warning.
    pub ssl_insecure_skip_verify: bool,
}

impl TlsKeys {
    pub fn files(&self) -> TlsFiles<'_> {
        TlsFiles {
            ca_certs: self.ssl_ca_certs.as_deref(),
            certfile: self.ssl_certfile.as_deref(),
            keyfile: self.ssl_keyfile.as_deref(),
            insecure_skip_verify: self.ssl_insecure_skip_verify,
        }
    }
}

impl SharedKeys for TlsKeys {
    fn names() -> Vec<&'static str> {
        vec![
            "ssl",
            "ssl_ca_certs",
            "ssl_certfile",
            "ssl_keyfile",
            "ssl_insecure_skip_verify",
        ]
    }

    fn serialize_fields<T: SerializeStruct>(&self, out: &mut T) -> Result<(), T::Error> {
        out.serialize_field("ssl", &self.ssl)?;
        out.serialize_field("ssl_ca_certs", &self.ssl_ca_certs)?;
        out.serialize_field("ssl_certfile", &self.ssl_certfile)?;
        out.serialize_field("ssl_keyfile", &self.ssl_keyfile)?;
        out.serialize_field("ssl_insecure_skip_verify", &self.ssl_insecure_skip_verify)
    }

    fn read<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "ssl" => self.ssl = map.next_value()?,
            "ssl_ca_certs" => self.ssl_ca_certs = map.next_value()?,
            "ssl_certfile" => self.ssl_certfile = map.next_value()?,
            "ssl_keyfile" => self.ssl_keyfile = map.next_value()?,
            "ssl_insecure_skip_verify" => self.ssl_insecure_skip_verify = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The TLS options of a client's config (`ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`,
/// `ssl_insecure_skip_verify`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    pub ca_certs: Option<&'a Path>,
    pub certfile: Option<&'a Path>,
    pub keyfile: Option<&'a Path>,
    pub insecure_skip_verify: bool,
}

/// Checks the TLS options without reading the files. `switch` says how the plugin's user
/// turns TLS on (`` `ssl: true` ``), for messages.
pub fn check_options(tls: bool, files: &TlsFiles, switch: &str) -> Result<(), String> {
    let any_file = files.ca_certs.is_some() || files.certfile.is_some() || files.keyfile.is_some();
    if !tls && any_file {
        return Err(format!(
            "ssl_ca_certs / ssl_certfile / ssl_keyfile are set but TLS is off: turn it on with {switch}"
        ));
    }
    if files.certfile.is_some() != files.keyfile.is_some() {
        return Err("ssl_certfile and ssl_keyfile go together: set both or neither".into());
    }
    if tls && !cfg!(feature = "tls") {
        return Err(format!(
            "TLS was asked for ({switch}) but this binary was built without TLS (cargo feature `tls`); use a build with default features, or connect without TLS"
        ));
    }
    Ok(())
}

/// rustls with the ring provider. `who` names the plugin in the warning about
/// `ssl_insecure_skip_verify`.
#[cfg(feature = "tls")]
pub fn rustls_config(cfg: &TlsFiles, who: &str) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if cfg.insecure_skip_verify {
        log::warn!(
            "{who}: ssl_insecure_skip_verify is on: the server's certificate is NOT checked, so anyone on the path can read and change the data"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match cfg.ca_certs {
            Some(path) => {
                for cert in read_certs(path, "ssl_ca_certs")? {
                    roots.add(cert).map_err(|e| {
                        format!("ssl_ca_certs {}: unusable certificate: {e}", path.display())
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (cfg.certfile, cfg.keyfile) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "ssl_certfile")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                format!("ssl_keyfile {}: no usable private key: {e}", key.display())
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("ssl_certfile/ssl_keyfile: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// A server's TLS setup (the `prometheus` output's endpoint): its certificate chain and
/// key from PEM files, no client certificates asked for.
#[cfg(feature = "tls")]
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(cert, "tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls_key {}: no usable private key: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_cert/tls_key: {e}"))?;
    Ok(Arc::new(config))
}

#[cfg(feature = "tls")]
fn read_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{key} {}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The TLS handshake on a connected `tcp` stream to `host` (`addr` for messages).
#[cfg(feature = "tls")]
pub async fn handshake<S>(
    config: &Arc<ClientConfig>,
    host: &str,
    addr: &str,
    tcp: S,
) -> Result<futures_rustls::client::TlsStream<S>, String>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
    futures_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| {
            format!(
                "TLS handshake with {addr} failed: {}",
                explain_io(&e, "server", host)
            )
        })
}

/// A failed handshake's I/O error in words: the rustls error inside it, or the connection
/// closed under it.
#[cfg(feature = "tls")]
pub fn explain_io(e: &std::io::Error, peer: &str, host: &str) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(err) => explain(err, peer, host),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => format!(
                "the {peer} closed the connection during the handshake ({e}); is this a TLS port?"
            ),
            _ => e.to_string(),
        },
    }
}

/// A handshake's failure in words, with a hint at the setting to check. `peer` is what
/// the other side is called ("server", "broker"), `host` the name connected to.
#[cfg(feature = "tls")]
pub fn explain(err: &rustls::Error, peer: &str, host: &str) -> String {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("the {peer}'s certificate is not signed by a trusted CA (UnknownIssuer); {UNKNOWN_ISSUER_HINT}")
        }
        rustls::Error::InvalidCertificate(c) if is_ca_used_as_end_entity(c) => format!(
            "the {peer}'s certificate is a CA certificate (CaUsedAsEndEntity); TLS refuses one as a {peer}'s own, {CA_AS_END_ENTITY_HINT}"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the {peer}'s certificate is not valid for `{host}` (NotValidForName); connect by a name or address the certificate lists"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the {peer}'s certificate has expired"),
        rustls::Error::AlertReceived(alert) => format!(
            "the {peer} refused the handshake (alert {alert:?}); does it want a client certificate (ssl_certfile, ssl_keyfile)?"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("the {peer} did not answer with TLS ({err}); is this a TLS port?")
        }
        other => other.to_string(),
    }
}

/// What to set when the peer's certificate has no trusted signer.
#[cfg(feature = "tls")]
const UNKNOWN_ISSUER_HINT: &str =
    "set ssl_ca_certs to the CA that signed it (for a self-signed certificate, the certificate itself)";

/// What to do about a self-signed certificate marked as a CA (`openssl req -x509`
/// does that by default). TLS refuses a CA certificate as the peer's own whatever the
/// trusted set holds, so pointing ssl_ca_certs at it alone cannot help (seen with
/// rustls: the same error with and without it).
#[cfg(feature = "tls")]
const CA_AS_END_ENTITY_HINT: &str =
    "even with ssl_ca_certs set to it, and a self-signed certificate made by `openssl req -x509` is one: sign a server certificate with that CA and set ssl_ca_certs to the CA, or remake the self-signed certificate with `-addext basicConstraints=critical,CA:FALSE` and set ssl_ca_certs to it";

/// webpki reports this case only as `Other(OtherError(CaUsedAsEndEntity))`, an error
/// type rustls does not export, so it is recognised by its name.
#[cfg(feature = "tls")]
fn is_ca_used_as_end_entity(e: &CertificateError) -> bool {
    matches!(e, CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity"))
}

/// `ssl_insecure_skip_verify` (and the web inputs' certificate-expiry probe): any
/// certificate is accepted, signatures still checked.
#[cfg(any(feature = "tls", feature = "http"))]
#[derive(Debug)]
pub struct AcceptAny(pub Arc<CryptoProvider>);

#[cfg(any(feature = "tls", feature = "http"))]
impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_without_tls_and_a_lone_certfile_are_refused() {
        let ca = TlsFiles {
            ca_certs: Some(Path::new("/ca.pem")),
            ..TlsFiles::default()
        };
        let e = check_options(false, &ca, "`ssl: true`").unwrap_err();
        assert!(e.contains("TLS is off: turn it on with `ssl: true`"), "{e}");
        let lone = TlsFiles {
            certfile: Some(Path::new("/c.pem")),
            ..TlsFiles::default()
        };
        let e = check_options(true, &lone, "`ssl: true`").unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let r = check_options(true, &TlsFiles::default(), "`ssl: true`");
        if cfg!(feature = "tls") {
            assert!(r.is_ok());
        } else {
            assert!(r.unwrap_err().contains("built without TLS"));
        }
    }
}
