//! TLS for the sync connection: rustls with the ring provider.
//!
//! Whom a phone trusts (decided 2026-11-30):
//! - with a company CA given at `init` (`--ca-cert FILE`, or the mobile API's `caCertPem`): that CA
//!   only. A company that runs its own CA pins its server to it, and a certificate some public CA
//!   issued for the same name is refused;
//! - without one: the platform's roots, read from the operating system's store (rustls-native-certs:
//!   Linux, macOS, Windows). Where that store cannot be read — Android and iOS keep theirs behind
//!   platform APIs — Mozilla's root set compiled into the library (webpki-roots) is used instead,
//!   so a server with a certificate from a public CA works out of the box there too.
//!
//! A certificate that does not chain to a trusted root, or that is not valid for the host, is
//! `Error::Tls` with a sentence that says which; there is no fallback to plain text, and plain
//! `http://` is accepted only for a server on this machine (loopback), for development.

use std::sync::{Arc, OnceLock};

use rustls::client::ClientConfig;
use rustls::{CertificateError, RootCertStore};

use crate::error::{Error, Result};

/// The client configuration for a server: trusting `ca_pem`'s certificates only, or the
/// platform's roots.
pub fn client_config(ca_pem: Option<&str>) -> Result<Arc<ClientConfig>> {
    let roots = match ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in crate::sync::status::ca_certificates(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| Error::invalid("ca_cert", format!("not a usable CA certificate: {e}")))?;
            }
            Arc::new(roots)
        }
        None => platform_roots(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            reason: format!("TLS set-up: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The operating system's roots, or Mozilla's where the system store cannot be read; read once.
fn platform_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

/// The TLS failure inside a connection error, as a sentence for the user; `None` if the error
/// is not about TLS.
pub fn explain(e: &tokio_tungstenite::tungstenite::Error, host: &str, own_ca: bool) -> Option<String> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::TlsError;
    let rustls_error = match e {
        WsError::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        WsError::Tls(TlsError::Rustls(e)) => Some(e.as_ref()),
        WsError::Tls(TlsError::InvalidDnsName) => {
            return Some(format!("{host:?} is not a host name a certificate can name"));
        }
        _ => None,
    }?;
    let trusted = if own_ca {
        "the CA given at init"
    } else {
        "a trusted root"
    };
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                format!("the server's certificate does not chain to {trusted}")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the server's certificate is not valid for host {host}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (is this phone's clock right?)".to_string()
            }
            CertificateError::Revoked => "the server's certificate is revoked".to_string(),
            other => format!("the server's certificate is refused: {other:?}"),
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server did not answer in TLS (is it serving plain http:// on this port?)".to_string()
        }
        rustls::Error::AlertReceived(alert) => format!("the server refused the TLS handshake ({alert:?})"),
        other => format!("TLS failed: {other}"),
    })
}
