//! Blobs in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, moto …), through the
//! `object_store` crate.
//!
//! Keys are content addresses under a configurable prefix, laid out like the data directory:
//! `<prefix>/aa/<sha256>` and the cached thumbnail `<prefix>/aa/<sha256>.thumb.jpg`.
//!
//! Uploads are staged as with the other stores ([`super::Staging`]: the node's disk on SQLite, the
//! shared database on PostgreSQL), and only the whole, verified file is sent to the bucket, in one `PUT` up to
//! [`S3Config::part_bytes`] and as a multipart upload above it. The file is hashed again as it is
//! read for sending, and a multipart upload whose bytes do not hash to the address is aborted
//! before it completes, so an object under a hash is always the bytes of that hash: S3 makes an
//! object visible only when its `PUT` or `CompleteMultipartUpload` succeeds.
//!
//! [`super::BlobStore`] is synchronous (handlers call it on a blocking thread). The store runs its
//! requests on a small runtime of its own and the calling thread waits for the answer on a
//! channel: that never enters a runtime from inside another (which panics) and never parks a
//! worker of the server's runtime on I/O it is itself supposed to drive.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::Digest;
use sitesync_core::attachments::BlobHash;
use tokio::io::AsyncReadExt;

use super::BlobStore;
use crate::error::{Error, Result};

/// The smallest part S3 takes in a multipart upload (all but the last part).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// Where the bucket is, how blobs are laid out in it, and the credentials when they are not the
/// standard AWS environment's (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The service's URL (`http://127.0.0.1:9000`); `None` is AWS itself, by region. Plain
    /// `http://` is allowed only when named here.
    pub endpoint: Option<String>,
    /// The bucket, which must exist.
    pub bucket: String,
    /// The region the requests are signed for.
    pub region: String,
    /// The key prefix blobs live under (`blobs`), so one bucket can hold other things too.
    pub prefix: String,
    /// Files up to this size are sent in one `PUT`; larger ones in parts of this size (at least
    /// [`MIN_PART_BYTES`]).
    pub part_bytes: usize,
    /// An access key id and its secret; `None` takes them from the AWS environment (the server's
    /// command line always does).
    pub keys: Option<(String, String)>,
}

impl S3Config {
    /// The bucket `bucket` in `region` at `endpoint`, blobs under `blobs/`, 8 MiB parts.
    pub fn new(endpoint: Option<String>, bucket: &str, region: &str) -> S3Config {
        S3Config {
            endpoint,
            bucket: bucket.to_string(),
            region: region.to_string(),
            prefix: "blobs".to_string(),
            part_bytes: 8 * 1024 * 1024,
            keys: None,
        }
    }
}

/// Blobs as objects in an S3-compatible bucket.
#[derive(Debug)]
pub struct S3BlobStore {
    /// The bucket's client.
    store: Arc<dyn ObjectStore>,
    /// The key prefix, without a trailing slash.
    prefix: String,
    /// The part size of multipart uploads, and the largest file sent in one `PUT`.
    part_bytes: usize,
    /// Where the requests run.
    io: Io,
}

impl S3BlobStore {
    /// Connects to the bucket and checks that it answers (a listing under the prefix), so a wrong
    /// endpoint, bucket or credential stops the server at start and not at the first photo.
    pub fn open(config: &S3Config) -> Result<S3BlobStore> {
        if config.bucket.is_empty() {
            return Err(Error::Config("the S3 bucket is not named".into()));
        }
        if config.part_bytes < MIN_PART_BYTES {
            return Err(Error::Config(format!(
                "S3 parts must be at least {MIN_PART_BYTES} bytes, not {}",
                config.part_bytes
            )));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region);
        if let Some((id, secret)) = &config.keys {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder
            .build()
            .map_err(|e| Error::Config(format!("S3 bucket {}: {e}", config.bucket)))?;
        let prefix = config.prefix.trim_matches('/').to_string();
        let s3 = S3BlobStore {
            store: Arc::new(store),
            prefix,
            part_bytes: config.part_bytes,
            io: Io::start()?,
        };
        let (store, prefix) = (s3.store.clone(), Key::from(s3.prefix.as_str()));
        s3.io
            .run(async move { store.list_with_delimiter(Some(&prefix)).await.map(drop) })
            .map_err(|e| Error::Config(format!("S3 bucket {}: {e}", config.bucket)))?;
        Ok(s3)
    }

    fn key(&self, hash: &BlobHash, suffix: &str) -> Key {
        let name = format!("{}/{hash}{suffix}", &hash.as_str()[..2]);
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Runs a request on the store's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        what: impl std::fmt::Display,
        f: impl FnOnce(Arc<dyn ObjectStore>) -> Fut<T>,
    ) -> Result<T> {
        self.io
            .run(f(self.store.clone()))
            .map_err(|e| Error::Internal(format!("S3 {what}: {e}")))
    }
}

/// A request's future.
type Fut<T> = std::pin::Pin<Box<dyn Future<Output = object_store::Result<T>> + Send>>;

/// `None` for a missing object.
fn found<T>(r: object_store::Result<T>) -> object_store::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl BlobStore for S3BlobStore {
    fn size(&self, hash: &BlobHash) -> Result<Option<u64>> {
        let key = self.key(hash, "");
        self.run(format!("blob {hash}"), |s| {
            Box::pin(async move { found(s.head(&key).await).map(|m| m.map(|m| m.size)) })
        })
    }

    fn put_file(&self, hash: &BlobHash, staged: &Path) -> Result<()> {
        if self.size(hash)?.is_some() {
            return std::fs::remove_file(staged).map_err(|e| Error::Internal(format!("{}: {e}", staged.display())));
        }
        let (key, part, staged_path, expected) =
            (self.key(hash, ""), self.part_bytes, staged.to_path_buf(), hash.clone());
        self.io
            .run(send(self.store.clone(), key, staged_path, expected, part))
            .map_err(|e| Error::Internal(format!("S3 blob {hash}: {e}")))??;
        std::fs::remove_file(staged).map_err(|e| Error::Internal(format!("{}: {e}", staged.display())))
    }

    fn read_range(&self, hash: &BlobHash, offset: u64, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let key = self.key(hash, "");
        let end = offset.saturating_add(len as u64);
        self.run(format!("blob {hash}"), |s| {
            Box::pin(async move {
                match s.get_range(&key, offset..end).await {
                    Ok(b) => Ok(b.to_vec()),
                    // A range from the end on is empty, as a file read there is; S3 refuses it.
                    Err(e) => match s.head(&key).await {
                        Ok(meta) if offset >= meta.size => Ok(Vec::new()),
                        _ => Err(e),
                    },
                }
            })
        })
    }

    fn thumbnail(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let key = self.key(hash, ".thumb.jpg");
        self.run(format!("thumbnail {hash}"), |s| {
            Box::pin(async move {
                match found(s.get(&key).await)? {
                    Some(got) => Ok(Some(got.bytes().await?.to_vec())),
                    None => Ok(None),
                }
            })
        })
    }

    fn put_thumbnail(&self, hash: &BlobHash, jpeg: &[u8]) -> Result<()> {
        let (key, payload) = (self.key(hash, ".thumb.jpg"), PutPayload::from(jpeg.to_vec()));
        self.run(format!("thumbnail {hash}"), |s| {
            Box::pin(async move { s.put(&key, payload).await.map(drop) })
        })
    }
}

/// Sends a staged file to `key`, hashing it on the way; the object appears only if the bytes
/// sent hash to `expected`. The outer error is the request's (as `Error::Internal`), the inner a
/// hash mismatch.
async fn send(
    store: Arc<dyn ObjectStore>,
    key: Key,
    staged: PathBuf,
    expected: BlobHash,
    part: usize,
) -> object_store::Result<Result<()>> {
    let local = |e: std::io::Error| object_store::Error::Generic {
        store: "staging",
        source: Box::new(e),
    };
    let mut file = tokio::fs::File::open(&staged).await.map_err(local)?;
    let len = file.metadata().await.map_err(local)?.len();
    let mut digest = sha2::Sha256::new();
    if len <= part as u64 {
        let mut bytes = Vec::with_capacity(len as usize);
        file.read_to_end(&mut bytes).await.map_err(local)?;
        digest.update(&bytes);
        if let Err(e) = check(digest, &expected) {
            return Ok(Err(e));
        }
        store.put(&key, PutPayload::from(bytes)).await?;
        return Ok(Ok(()));
    }
    let mut writer = WriteMultipart::new_with_chunk_size(store.put_multipart(&key).await?, part);
    let mut buf = vec![0u8; 1024 * 1024];
    let read = async {
        loop {
            let n = file.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                return Ok::<(), object_store::Error>(());
            }
            digest.update(&buf[..n]);
            // At most two parts in flight: memory stays near three parts whatever the file.
            writer.wait_for_capacity(2).await?;
            writer.write(&buf[..n]);
        }
    };
    if let Err(e) = read.await {
        let _ = writer.abort().await;
        return Err(e);
    }
    if let Err(e) = check(digest, &expected) {
        // Aborted, never completed: nothing is visible under the hash.
        writer.abort().await?;
        return Ok(Err(e));
    }
    writer.finish().await?;
    Ok(Ok(()))
}

/// Whether the digest is the expected hash.
fn check(digest: sha2::Sha256, expected: &BlobHash) -> Result<()> {
    let actual = hex::encode(digest.finalize());
    if actual == expected.as_str() {
        Ok(())
    } else {
        Err(Error::HashMismatch {
            expected: expected.to_string(),
            actual,
        })
    }
}

/// A runtime of the store's own (one worker thread) that its requests run on.
#[derive(Debug)]
struct Io {
    /// `Some` until dropped; shut down in the background, since the store may be dropped inside
    /// the server's runtime, where dropping a runtime panics.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Io {
    fn start() -> Result<Io> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("S3 runtime: {e}")))?;
        Ok(Io { runtime: Some(runtime) })
    }

    /// Runs `fut` on the store's runtime; the calling thread waits on a channel (it must be a
    /// thread that may block: the trait's callers use blocking threads).
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Result<T, object_store::Error> {
        let gone = || object_store::Error::Generic {
            store: "S3",
            source: "the store's runtime stopped before answering".into(),
        };
        let runtime = self.runtime.as_ref().ok_or_else(gone)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // A request that panicked drops its sender: an error here, not a panic on this thread.
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
