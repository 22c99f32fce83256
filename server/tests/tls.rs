//! HTTPS end to end with the real binary: `serve --tls-cert --tls-key` with certificates made here
//! at run time (rcgen; no key is committed), phones that trust the company's CA sync over it, and
//! phones whose trust does not fit get a typed TLS error that says why — never plain text. Renewal:
//! the files are replaced and the server is sent SIGHUP; new connections get the new certificate.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use sitesync_core::Store;
use sitesync_core::sync::client::sync_once;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A certificate authority made for the test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses): `(certificate PEM, key PEM)`.
    fn server_cert(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "sitesync test server");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes a certificate and key where the server reads them (the key private, as it should be).
fn install(dir: &Path, (cert, key): &(String, String)) {
    // Written beside and renamed, as a renewal tool does, so the server never reads half a file.
    std::fs::write(dir.join("cert.pem.new"), cert).unwrap();
    std::fs::write(dir.join("key.pem.new"), key).unwrap();
    sitesync_server::files::set_mode(&dir.join("key.pem.new"), 0o600).unwrap();
    std::fs::rename(dir.join("key.pem.new"), dir.join("key.pem")).unwrap();
    std::fs::rename(dir.join("cert.pem.new"), dir.join("cert.pem")).unwrap();
}

fn fingerprint_of_pem(pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    hex::encode(Sha256::digest(der.as_ref()))
}

/// One HTTPS request trusting `ca` only; returns the answer (head and body) and the fingerprint of
/// the certificate the server presented.
async fn https(addr: SocketAddr, ca: &str, request: &str) -> Result<(String, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(addr.ip().to_string()).unwrap();
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    Ok((
        String::from_utf8_lossy(&answer).into_owned(),
        hex::encode(Sha256::digest(presented.as_ref())),
    ))
}

fn get(path: &str, addr: SocketAddr) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

/// Waits (30 s at most) until the server presents the certificate with `fingerprint` and answers.
async fn serving(addr: SocketAddr, ca: &str, fingerprint: &str, server: &mut support::Process, log: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((answer, presented)) = https(addr, ca, &get("/healthz", addr)).await
            && answer.starts_with("HTTP/1.1 200")
            && presented == fingerprint
        {
            return;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("the server exited ({status}):\n{}", support::tail(log));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server did not present the certificate within 30 s:\n{}",
            support::tail(log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sighup(server: &support::Process) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A phone bound to `url` trusting `ca`; `sync_once`'s outcome.
async fn phone_sync(dir: &Path, name: &str, url: &str, token: &str, ca: Option<&str>) -> sitesync_core::Result<usize> {
    let mut phone = Store::open(dir.join(format!("{name}.sqlite3"))).unwrap();
    phone.bind_with_ca(url, token, ca).unwrap();
    sync_once(&mut phone).await.map(|p| p.received)
}

fn tls_reason(r: sitesync_core::Result<usize>) -> String {
    match r {
        Err(sitesync_core::Error::Tls { reason }) => reason,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_sync_over_https_refuse_what_does_not_chain_or_match_and_a_renewal_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (data, tls_dir, log) = (
        support::DataDir::new(dir.path().join("data")),
        dir.path().join("tls"),
        dir.path().join("server.log"),
    );
    std::fs::create_dir_all(&tls_dir).unwrap();
    let token = support::company(&data, &["u-foreman-hz-01"]).remove(0);
    let (company, other) = (Ca::new("筑远 company CA"), Ca::new("someone else's CA"));
    let first = company.server_cert(&["127.0.0.1", "localhost"]);
    install(&tls_dir, &first);
    let addr = support::free_addr();
    let cert = tls_dir.join("cert.pem");
    let key = tls_dir.join("key.pem");
    let mut server = support::start_with(
        Command::new(support::server_bin()),
        &data,
        addr,
        &log,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    serving(addr, &company.pem(), &fingerprint_of_pem(&first.0), &mut server, &log).await;
    let url = format!("https://{addr}");
    let phones = tempfile::tempdir().unwrap();

    // The company's phone: trusts the company CA, syncs, receives its site.
    let got = phone_sync(phones.path(), "a", &url, &token, Some(&company.pem()))
        .await
        .unwrap();
    assert!(got >= 1, "the site's documents arrive over HTTPS ({got})");
    let by_name = format!("https://localhost:{}", addr.port());
    phone_sync(phones.path(), "b", &by_name, &token, Some(&company.pem()))
        .await
        .unwrap();

    // A phone trusting another CA, and one trusting the platform's roots: refused, and told why.
    let reason = tls_reason(phone_sync(phones.path(), "c", &url, &token, Some(&other.pem())).await);
    assert!(reason.contains("does not chain to the CA given at init"), "{reason}");
    let reason = tls_reason(phone_sync(phones.path(), "d", &url, &token, None).await);
    assert!(reason.contains("does not chain to a trusted root"), "{reason}");

    // Over HTTPS the session cookie is Secure, and browsers are told to stay on HTTPS.
    let body = format!("{{\"token\":\"{token}\"}}");
    let sign_in = format!(
        "POST /v1/session HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = https(addr, &company.pem(), &sign_in).await.unwrap();
    let head = answer.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    let cookie = head.lines().find(|l| l.starts_with("set-cookie:")).unwrap();
    assert!(cookie.contains("; secure") && cookie.contains("httponly"), "{cookie}");
    assert!(head.contains("strict-transport-security: max-age="), "{head}");

    // Renewal to a certificate for another host name: SIGHUP, and new connections get it — which
    // the phone refuses, naming the host.
    let wrong_host = company.server_cert(&["hq.example.com"]);
    install(&tls_dir, &wrong_host);
    sighup(&server);
    serving_refused(addr, &company.pem(), &mut server, &log).await;
    let reason = tls_reason(phone_sync(phones.path(), "a", &url, &token, Some(&company.pem())).await);
    assert!(reason.contains("not valid for host 127.0.0.1"), "{reason}");

    // Renewal under another CA: the phones that trust it sync, the others are refused.
    let renewed = other.server_cert(&["127.0.0.1"]);
    install(&tls_dir, &renewed);
    sighup(&server);
    serving(addr, &other.pem(), &fingerprint_of_pem(&renewed.0), &mut server, &log).await;
    phone_sync(phones.path(), "c", &url, &token, Some(&other.pem()))
        .await
        .unwrap();
    let reason = tls_reason(phone_sync(phones.path(), "a", &url, &token, Some(&company.pem())).await);
    assert!(reason.contains("does not chain"), "{reason}");

    // A broken renewal (a key that is not the certificate's) is refused; the server keeps the
    // certificate it has.
    let mismatched = (
        other.server_cert(&["127.0.0.1"]).0,
        company.server_cert(&["127.0.0.1"]).1,
    );
    install(&tls_dir, &mismatched);
    sighup(&server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !support::tail(&log).contains("TLS certificate not reloaded") {
        assert!(tokio::time::Instant::now() < deadline, "{}", support::tail(&log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serving(addr, &other.pem(), &fingerprint_of_pem(&renewed.0), &mut server, &log).await;
    support::stop(server);
}

/// Waits (30 s at most) until a client trusting `ca` is refused (the certificate changed).
async fn serving_refused(addr: SocketAddr, ca: &str, server: &mut support::Process, log: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while https(addr, ca, &get("/healthz", addr)).await.is_ok() {
        assert!(server.0.try_wait().unwrap().is_none(), "{}", support::tail(log));
        assert!(tokio::time::Instant::now() < deadline, "{}", support::tail(log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_server_fails_clearly_and_plain_http_is_for_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (
        support::DataDir::new(dir.path().join("data")),
        dir.path().join("server.log"),
    );
    let token = support::company(&data, &["u-foreman-hz-01"]).remove(0);
    let addr = support::free_addr();
    let mut server = support::start(&data, addr, &log);
    support::healthy(&mut server, addr, &log, "plain server");
    let phones = tempfile::tempdir().unwrap();

    // Plain http:// to this machine: the development set-up works as before.
    let got = phone_sync(phones.path(), "dev", &format!("http://{addr}"), &token, None)
        .await
        .unwrap();
    assert!(got >= 1);

    // https:// to the plain server: a TLS error saying so, not a fallback to plain text.
    let reason = tls_reason(phone_sync(phones.path(), "tls", &format!("https://{addr}"), &token, None).await);
    assert!(reason.contains("did not answer in TLS"), "{reason}");

    // Plain http:// to another host is refused when binding: the token would travel in clear.
    let mut phone = Store::open(phones.path().join("lan.sqlite3")).unwrap();
    let err = phone.bind("http://192.168.1.20:8080", &token).unwrap_err();
    assert!(err.to_string().contains("clear text"), "{err}");
    support::stop(server);
}
