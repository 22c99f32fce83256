//! A real S3-compatible server for the blob-storage tests: the one `SITESYNC_TEST_S3` names (CI
//! starts moto there), or a `moto_server` (PyPI `moto[server]`) started on a free loopback port
//! for the test and stopped when it ends. Without either the tests say they were skipped and pass,
//! unless `SITESYNC_REQUIRE_S3=1`, where they fail.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sitesync_server::blobs::s3::{S3BlobStore, S3Config};

/// The server's URL, if the environment names one.
const URL_VAR: &str = "SITESYNC_TEST_S3";

/// The bucket the tests share; each store gets a prefix of its own in it.
const BUCKET: &str = "sitesync-test";

/// A running S3-compatible server.
#[derive(Debug)]
pub struct S3Server {
    /// Its URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The moto process this test started (stopped on drop), or `None` for the environment's.
    child: Option<Child>,
}

impl S3Server {
    /// The environment's server, or a moto started now; `None` (said on stdout) when there is
    /// neither. Panics under `SITESYNC_REQUIRE_S3=1` instead of returning `None`.
    pub async fn start() -> Option<S3Server> {
        let server = match std::env::var(URL_VAR) {
            Ok(url) => Some(S3Server {
                url: url.trim_end_matches('/').to_string(),
                child: None,
            }),
            Err(_) => tokio::task::spawn_blocking(start_moto).await.unwrap(),
        };
        let Some(server) = server else {
            assert!(
                std::env::var("SITESYNC_REQUIRE_S3").as_deref() != Ok("1"),
                "SITESYNC_REQUIRE_S3=1 but no S3 server: set {URL_VAR} or install moto (pip install 'moto[server]')"
            );
            println!("skipped: no S3 server (set {URL_VAR}, or pip install 'moto[server]' for moto_server)");
            return None;
        };
        // The bucket, made by an unsigned PUT (moto takes it; 409 means it exists).
        let resp = reqwest::Client::new()
            .put(format!("{}/{BUCKET}", server.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("S3 server at {}: {e}", server.url));
        assert!(
            resp.status().is_success() || resp.status() == 409,
            "creating bucket {BUCKET}: {}",
            resp.status()
        );
        Some(server)
    }

    /// A blob store in the shared bucket under a prefix no other store of this run uses, sending
    /// files larger than `part_bytes` in parts of that size.
    pub async fn store(&self, part_bytes: usize) -> S3BlobStore {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let mut config = S3Config::new(Some(self.url.clone()), BUCKET, "us-east-1");
        config.prefix = format!(
            "test-{}-{nanos}-{}/blobs",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        config.part_bytes = part_bytes;
        config.keys = Some(("sitesync-test".into(), "sitesync-test-secret".into()));
        tokio::task::spawn_blocking(move || S3BlobStore::open(&config))
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A moto server on a free loopback port, once it answers; `None` if `moto_server` is not
/// installed or never answers.
fn start_moto() -> Option<S3Server> {
    for _ in 0..3 {
        // A port free a moment ago; if moto loses it to someone else, it exits and we try another.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut server = S3Server {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = server.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(server);
    }
    None
}
