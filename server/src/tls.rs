//! The server's certificate and key (PEM files), loaded at start and again on `reload` (the binary
//! calls it on SIGHUP), so a renewed certificate takes effect for new connections without a restart;
//! connections already open keep the certificate they were made with.
//!
//! rustls with the ring provider (aws-lc-rs needs cmake and nasm and is slow to build on two cores);
//! TLS 1.2 and 1.3; ALPN offers HTTP/1.1 only (the sync WebSocket is an HTTP/1.1 upgrade).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// The certificate the server presents, reloadable.
pub struct Tls {
    /// The certificate chain file (PEM), leaf first.
    cert: PathBuf,
    /// The private key file (PEM: PKCS#8, PKCS#1 or SEC1).
    key: PathBuf,
    /// The configuration new connections are accepted with; replaced whole on reload.
    config: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate chain and key; fails if either is missing, malformed, or they do not
    /// belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls> {
        let config = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again; on success new connections get the new certificate, on failure the
    /// old one stays in force. Returns the new leaf certificate's SHA-256 fingerprint.
    pub fn reload(&self) -> Result<String> {
        let config = server_config(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.fingerprint()
    }

    /// The SHA-256 fingerprint (hex) of the leaf certificate in the certificate file.
    pub fn fingerprint(&self) -> Result<String> {
        let chain = read_chain(&self.cert)?;
        Ok(hex::encode(Sha256::digest(chain[0].as_ref())))
    }

    /// An acceptor with the configuration in force.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn config_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {what}", path.display()))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| config_error(path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(path, e))?;
    if chain.is_empty() {
        return Err(config_error(path, "no certificate (expected PEM, BEGIN CERTIFICATE)"));
    }
    Ok(chain)
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig> {
    let chain = read_chain(cert)?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| config_error(key, e))?;
    warn_if_readable_by_others(key);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| Error::Config(format!("{} and {}: {e}", cert.display(), key.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A private key others can read is worth a warning (it is not refused: the operator decides).
fn warn_if_readable_by_others(key: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(key) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(key = %key.display(), mode = format!("{mode:o}"), "the TLS key is readable by other users");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = key;
}
