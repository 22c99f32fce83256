//! Attachments end to end: a phone attaches a photo offline, syncs the day, uploads the bytes
//! through a connection that dies mid-file and resumes without re-sending what arrived; another
//! phone of the site downloads them; a raw client (no phone checks) is refused a wrong hash, an
//! oversized file, a body longer than it declared, another site's day and another site's blob.
//! Each of these runs twice: blobs in the data directory, and in a real S3-compatible server
//! (moto, `sitesync_tests::s3`), where a file over the part size goes up as a multipart upload.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sitesync_core::Store;
use sitesync_core::attachments::{BlobHash, Target, Transfer};
use sitesync_core::store::attachments::AttachRequest;
use sitesync_core::sync::blobs::sync_blobs;
use sitesync_server::AppState;
use sitesync_server::blobs::BlobStore;
use sitesync_server::blobs::s3::MIN_PART_BYTES;
use sitesync_server::limits::ConnectionLimits;
use sitesync_tests::harness::{Api, Engine, ServerDb, TestServer, phone};
use sitesync_tests::s3::S3Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{d, hz, sync};

/// A PNG of `px` × `px` pixels (a real image, so thumbnails can be made of it).
pub(crate) fn png(px: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(px, px, |x, y| image::Rgb([(x * 7) as u8, (y * 13) as u8, px as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Bytes that do not compress (a photo's are close to it), from a fixed seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A TCP proxy that counts every byte a client sends and can end the next connection (with a
/// clean close towards the server, as a phone whose network went away mid-request) after a budget.
struct CountingProxy {
    addr: SocketAddr,
    /// Bytes read from clients, over all connections.
    sent: Arc<AtomicU64>,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
    /// Which connection (by accept order) is ended, and after how many bytes.
    cut: Arc<std::sync::Mutex<Option<(u64, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    async fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let cut: Arc<std::sync::Mutex<Option<(u64, u64)>>> = Arc::default();
        let (s, a, c) = (sent.clone(), accepted.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let index = a.fetch_add(1, Ordering::SeqCst);
                let budget = match *c.lock().unwrap() {
                    Some((n, budget)) if n == index => budget,
                    _ => u64::MAX,
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        let mut left = budget;
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            s.fetch_add(n as u64, Ordering::SeqCst);
                            let take = (n as u64).min(left) as usize;
                            if sw.write_all(&buf[..take]).await.is_err() {
                                break;
                            }
                            left -= take as u64;
                            if left == 0 {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    // Either side ending ends the connection: a cut request gets no answer.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        CountingProxy {
            addr,
            sent,
            accepted,
            cut,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Ends the `nth` connection from now (0: the next) after `bytes` from the client.
    fn cut_after(&self, nth: u64, bytes: u64) {
        let index = self.accepted.load(Ordering::SeqCst) + nth;
        *self.cut.lock().unwrap() = Some((index, bytes));
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the server under test keeps verified blobs.
#[derive(Debug, Clone, Copy)]
enum Provider {
    /// Files in its data directory (the default).
    DataDir,
    /// An S3-compatible bucket, files over [`MIN_PART_BYTES`] in parts of that size.
    S3,
}

/// A server set up by `configure` that keeps blobs with `provider`, and the S3 server it uses
/// (kept running while the test holds it); `None` when there is no S3 server (the test is skipped).
async fn server(
    provider: Provider,
    configure: impl FnOnce(AppState) -> AppState,
) -> Option<(TestServer, Option<S3Server>)> {
    match provider {
        Provider::DataDir => Some((TestServer::start_configured(configure).await, None)),
        Provider::S3 => {
            let s3 = S3Server::start().await?;
            let store: Arc<dyn BlobStore> = Arc::new(s3.store(MIN_PART_BYTES).await);
            let server = TestServer::start_configured(move |s| configure(s).with_blob_store(store)).await;
            Some((server, Some(s3)))
        }
    }
}

fn attach(store: &mut Store, date: &str, bytes: &[u8], name: &str) -> BlobHash {
    store
        .attach(&AttachRequest {
            site: hz(),
            date: d(date),
            bytes,
            file_name: name,
            caption: "钢筋绑扎",
            target: Target::Day,
            gps: None,
            amend: None,
        })
        .unwrap()
        .sha256
}

fn transfer(store: &mut Store, date: &str, hash: &BlobHash) -> Transfer {
    store
        .attachments(&hz(), d(date))
        .unwrap()
        .into_iter()
        .find(|a| &a.attachment.sha256 == hash)
        .unwrap()
        .transfer
}

/// The connection dies after 1.5 MB of a 3 MiB file: the next run sends only the rest, so the
/// bytes that crossed the network add up to the file plus request headers, and the server holds
/// exactly the file. A second phone of the site then downloads it and caches a thumbnail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_mid_file_resumes_where_it_stopped() {
    cut_and_resumed(Provider::DataDir, 3 * 1024 * 1024).await;
}

/// The same on S3, with a file over the part size: the resumed upload is staged on the node's
/// disk and goes to the bucket as a multipart upload once whole and verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_an_upload_cut_mid_file_resumes_where_it_stopped() {
    cut_and_resumed(Provider::S3, MIN_PART_BYTES * 2 + 1000).await;
}

async fn cut_and_resumed(provider: Provider, size: usize) {
    let Some((server, _s3)) = server(provider, |s| s).await else {
        return;
    };
    let proxy = CountingProxy::start(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "u-foreman-hz-01", &proxy.url(), &token);
    sync(&mut foreman).await;
    let file = noise(size, 7);
    let hash = attach(&mut foreman, "2026-11-30", &file, "IMG_0001.jpg");
    assert_eq!(hash, BlobHash::of(&file));
    assert_eq!(transfer(&mut foreman, "2026-11-30", &hash), Transfer::Queued);
    // Offline: the file is queued and the day's record is not held up by it.
    sync(&mut foreman).await;

    // The status request is the next connection; the cut falls 1.5 MB into the upload after it.
    let before = proxy.sent();
    let cut = 1_500_000u64;
    proxy.cut_after(1, cut);
    let r = sync_blobs(&mut foreman, false).await.unwrap();
    assert_eq!(r.uploaded, 0, "{r:?}");
    assert_eq!(r.waiting.len(), 1, "{r:?}");
    // The server keeps what arrived: once the request that was cut let go of the upload, its
    // staged file holds the bytes that came through.
    let device = token.split('_').nth(1).map(|id| format!("d-{id}")).unwrap();
    let staging = server.state.staging().clone();
    // On PostgreSQL the staging area is the database, whose client blocks.
    let offset = || tokio::task::block_in_place(|| staging.offset(&device, &hash).unwrap());
    let staged = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if offset() > 0 {
                let _held = staging
                    .lock(&device, &hash, std::time::Duration::from_secs(10))
                    .await
                    .unwrap();
                return offset();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the cut request's bytes were staged");
    assert!(staged > 0 && staged <= cut, "the server kept what arrived: {staged}");
    // The phone asked after the cut; its answer may have come before the cut request was done.
    match transfer(&mut foreman, "2026-11-30", &hash) {
        Transfer::Sending { sent } => assert!(sent <= staged, "{sent} > {staged}"),
        Transfer::Queued => {}
        other => panic!("after the cut: {other:?}"),
    }

    let r = sync_blobs(&mut foreman, false).await.unwrap();
    assert_eq!(r.uploaded, 1, "{r:?}");
    assert_eq!(transfer(&mut foreman, "2026-11-30", &hash), Transfer::OnServer);
    let total = proxy.sent() - before;
    let overhead = total as i64 - size as i64;
    println!("bytes sent for a {size}-byte file cut at {cut}: {total} (overhead {overhead})");
    // Each request's header is a few hundred bytes, and the cut connection carried at most one
    // 16 KiB read past the cut; a re-sent file would be 1.5 MB more.
    assert!(
        (0..=32 * 1024).contains(&overhead),
        "sent {total} bytes for a {size}-byte file"
    );
    let h = hash.clone();
    let stored = server
        .state
        .blobs(move |b, _| b.read_range(&h, 0, size + 1))
        .await
        .unwrap();
    assert!(stored == file, "the server holds exactly the file");

    // Another phone of the site: the day arrives by document sync, the photo by blob sync.
    let token = server.device("u-manager-hz-01").await;
    let mut manager = phone(dir.path(), "u-manager-hz-01", &server.url(), &token);
    sync(&mut manager).await;
    assert_eq!(transfer(&mut manager, "2026-11-30", &hash), Transfer::Missing);
    let r = sync_blobs(&mut manager, false).await.unwrap();
    assert_eq!((r.downloaded, r.bytes_received), (1, size as u64), "{r:?}");
    assert_eq!(std::fs::read(manager.blob_path(&hash)).unwrap(), file);
    assert_eq!(transfer(&mut manager, "2026-11-30", &hash), Transfer::Downloaded);
    // Nothing more to move.
    let r = sync_blobs(&mut manager, false).await.unwrap();
    assert_eq!((r.uploaded, r.downloaded, r.waiting.len()), (0, 0, 0), "{r:?}");
}

/// Photos get thumbnails on the phone at attach time and on the server on first request; the
/// unmetered-only setting holds the files (not the day) back on a metered network; a download
/// resumes from a range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_ranges_and_the_unmetered_setting() {
    thumbnails_ranges_unmetered(Provider::DataDir).await;
}

/// The same with blobs and thumbnails in S3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_thumbnails_ranges_and_the_unmetered_setting() {
    thumbnails_ranges_unmetered(Provider::S3).await;
}

async fn thumbnails_ranges_unmetered(provider: Provider) {
    let Some((server, _s3)) = server(provider, |s| s).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "u-foreman-hz-01", &server.url(), &token);
    sync(&mut foreman).await;
    let photo = png(600);
    let hash = attach(&mut foreman, "2026-11-30", &photo, "photo.png");
    let listed = foreman.attachments(&hz(), d("2026-11-30")).unwrap();
    let thumb = listed[0].thumbnail.clone().expect("a thumbnail made at attach time");
    let small = image::load_from_memory(&std::fs::read(thumb).unwrap()).unwrap();
    assert!(small.width() <= 256 && small.height() <= 256);

    foreman.set_blobs_unmetered_only(true).unwrap();
    sync(&mut foreman).await;
    let r = sync_blobs(&mut foreman, true).await.unwrap();
    assert!(r.skipped_metered && r.uploaded == 0, "{r:?}");
    let r = sync_blobs(&mut foreman, false).await.unwrap();
    assert_eq!(r.uploaded, 1, "{r:?}");

    let api = Api::new(&server, &server.device("u-manager-hz-01").await);
    let path = format!("/v1/blobs/{hash}/thumbnail");
    let resp = api.request(reqwest::Method::GET, &path).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let first = resp.bytes().await.unwrap();
    let t = image::load_from_memory(&first).unwrap();
    assert_eq!((t.width(), t.height()), (256, 256));
    // Cached: the second answer is the same bytes.
    let again = api
        .request(reqwest::Method::GET, &path)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, again);

    let resp = api
        .request(reqwest::Method::GET, &format!("/v1/blobs/{hash}"))
        .header("range", "bytes=100-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &photo[100..]);
}

/// What a raw client sends when it skips the phone's checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_client_is_refused_wrong_hashes_oversized_files_and_other_sites() {
    raw_client_refused(Provider::DataDir).await;
}

/// The same with blobs in S3: nothing refused reaches the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_raw_client_is_refused_wrong_hashes_oversized_files_and_other_sites() {
    raw_client_refused(Provider::S3).await;
}

async fn raw_client_refused(provider: Provider) {
    let limits = ConnectionLimits {
        blob_bytes: 64 * 1024,
        ..ConnectionLimits::default()
    };
    let Some((server, _s3)) = server(provider, move |s| s.with_connection_limits(limits)).await else {
        return;
    };
    let token = server.device("u-foreman-hz-01").await;
    let device = token.split('_').nth(1).map(|id| format!("d-{id}")).unwrap();
    let api = Api::new(&server, &token);
    let put = |hash: &str, size: usize, offset: u64, body: Vec<u8>| {
        api.request(reqwest::Method::PUT, &format!("/v1/blobs/{hash}/upload"))
            .query(&[
                ("site", "site-hz-01".to_string()),
                ("date", "2026-11-30".to_string()),
                ("size", size.to_string()),
                ("offset", offset.to_string()),
            ])
            .body(body)
            .send()
    };
    let nothing_kept = |hash: BlobHash| {
        let (state, device) = (server.state.clone(), device.clone());
        async move {
            state
                .blobs(move |b, s| Ok((b.size(&hash)?, s.offset(&device, &hash)?)))
                .await
                .unwrap()
        }
    };

    // Bytes sent to the address of other bytes: 422, nothing stored or staged.
    let bytes = noise(10_000, 1);
    let claimed = BlobHash::of(b"something else");
    let resp = put(claimed.as_str(), bytes.len(), 0, bytes.clone()).await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nothing was stored"), "{body}");
    assert_eq!(nothing_kept(claimed).await, (None, 0));

    // Over the server's limit: a typed 413 before a byte is kept.
    let big = noise(64 * 1024 + 1, 2);
    let hash = BlobHash::of(&big);
    let resp = put(hash.as_str(), big.len(), 0, big.clone()).await.unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().is_some(), "{body}");
    assert_eq!(nothing_kept(hash.clone()).await, (None, 0));
    // … also when it claims to be small and sends more than it said.
    let resp = put(hash.as_str(), 1000, 0, big[..2000].to_vec()).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(nothing_kept(hash).await, (None, 0));

    // An offset that is not where the upload stands: 409, with where it does.
    let hash = BlobHash::of(&bytes);
    let resp = put(hash.as_str(), bytes.len(), 500, bytes[500..].to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    assert_eq!(nothing_kept(hash.clone()).await, (None, 0));
    // A malformed hash is a 400.
    let resp = put("not-a-hash", 10, 0, vec![0; 10]).await.unwrap();
    assert_eq!(resp.status(), 400);

    // The right bytes are stored, but nobody reads them until a day references them.
    let resp = put(hash.as_str(), bytes.len(), 0, bytes.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _) = api.get(&format!("/v1/blobs/{hash}"), &[]).await;
    assert_eq!(status, 403, "stored, but no day references it yet");

    // A device of another site (another org's foreman) may neither upload for our day nor read
    // our photo, even with its hash, even once our day references it.
    let dir = tempfile::tempdir().unwrap();
    let mut foreman = phone(dir.path(), "u-foreman-hz-01", &server.url(), &token);
    sync(&mut foreman).await;
    let photo = png(32);
    let photo_hash = attach(&mut foreman, "2026-11-30", &photo, "photo.png");
    sync(&mut foreman).await;
    assert_eq!(sync_blobs(&mut foreman, false).await.unwrap().uploaded, 1);
    server.add_org("org-other", "site-other-01", "u-other-foreman").await;
    let other = Api::new(&server, &server.device("u-other-foreman").await);
    for path in [
        format!("/v1/blobs/{photo_hash}"),
        format!("/v1/blobs/{photo_hash}/thumbnail"),
    ] {
        let (status, body) = other.get(&path, &[]).await;
        assert_eq!(status, 403, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let resp = other
        .request(reqwest::Method::PUT, &format!("/v1/blobs/{photo_hash}/upload"))
        .query(&[
            ("site", "site-hz-01"),
            ("date", "2026-11-30"),
            ("size", &photo.len().to_string()),
            ("offset", "0"),
        ])
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Uploading the same bytes for its own day stores its claim, but that day does not reference
    // the photo, so it still cannot read it.
    let resp = other
        .request(reqwest::Method::PUT, &format!("/v1/blobs/{photo_hash}/upload"))
        .query(&[
            ("site", "site-other-01"),
            ("date", "2026-11-30"),
            ("size", &photo.len().to_string()),
            ("offset", "0"),
        ])
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _) = other.get(&format!("/v1/blobs/{photo_hash}"), &[]).await;
    assert_eq!(status, 403);
    // Our site's manager reads it.
    let manager = Api::new(&server, &server.device("u-manager-hz-01").await);
    let (status, body) = manager.get(&format!("/v1/blobs/{photo_hash}"), &[]).await;
    assert_eq!((status, body), (200, photo));
}

/// The S3 provider on its own: a file over the part size goes up in parts and reads back by ranges
/// across the parts' boundaries; bytes that do not hash to their address never become an object,
/// sent in parts (the multipart upload is aborted, none is left open) or in one `PUT`; a read from
/// the end is empty, as a file's; a thumbnail is cached; storing a blob again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_objects_appear_only_whole_and_verified() {
    let Some(s3) = S3Server::start().await else {
        return;
    };
    let store = Arc::new(s3.store(MIN_PART_BYTES).await);
    let dir = tempfile::tempdir().unwrap();
    let staged = dir.path().join("staged");
    let big = noise(MIN_PART_BYTES * 2 + 12_345, 3);
    let small = noise(10_000, 4);
    let (b, st) = (store.clone(), staged.clone());
    let (big_hash, wrong_big, wrong_small) = tokio::task::spawn_blocking(move || {
        let (hash, wrong_big, wrong_small) = (BlobHash::of(&big), BlobHash::of(b"big"), BlobHash::of(b"small"));
        for (bytes, wrong) in [(&big, &wrong_big), (&small, &wrong_small)] {
            std::fs::write(&st, bytes).unwrap();
            let refused = b.put_file(wrong, &st);
            assert!(
                matches!(refused, Err(sitesync_server::error::Error::HashMismatch { .. })),
                "{refused:?}"
            );
            assert_eq!(
                b.size(wrong).unwrap(),
                None,
                "nothing under a hash its bytes do not have"
            );
        }
        std::fs::write(&st, &big).unwrap();
        b.put_file(&hash, &st).unwrap();
        assert!(!st.exists(), "the staged file is the store's once stored");
        assert_eq!(b.size(&hash).unwrap(), Some(big.len() as u64));
        let at = MIN_PART_BYTES as u64 - 100;
        assert_eq!(
            b.read_range(&hash, at, 200).unwrap(),
            &big[at as usize..at as usize + 200]
        );
        assert_eq!(b.read_range(&hash, 0, big.len() + 10).unwrap(), big);
        assert!(b.read_range(&hash, big.len() as u64, 10).unwrap().is_empty());
        // Again, from another device's staging: nothing changes, the staged file is dropped.
        std::fs::write(&st, &big).unwrap();
        b.put_file(&hash, &st).unwrap();
        assert!(!st.exists());
        assert_eq!(b.thumbnail(&hash).unwrap(), None);
        b.put_thumbnail(&hash, b"jpeg bytes").unwrap();
        assert_eq!(b.thumbnail(&hash).unwrap().as_deref(), Some(&b"jpeg bytes"[..]));
        (hash, wrong_big, wrong_small)
    })
    .await
    .unwrap();
    // No multipart upload is left open under the refused hash (they cost storage until aborted).
    let open = reqwest::get(format!("{}/sitesync-test?uploads", s3.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.contains("ListMultipartUploadsResult"), "{open}");
    for hash in [&big_hash, &wrong_big, &wrong_small] {
        assert!(!open.contains(hash.as_str()), "{hash} left open: {open}");
    }
}

/// Attachment records a crafted client writes straight into a day, skipping the phone's checks: a
/// hash that is not one, a negative or too large size, an id that is not derived from its target
/// and hash, someone else's name as the one who attached it. Each is refused; a well-formed one
/// is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_attachment_records_are_refused() {
    use sitesync_core::ids::DocId;
    use sitesync_core::sync::protocol::DocResult;
    use sitesync_tests::crafted::Crafted;
    use sitesync_tests::harness::RawClient;

    let server = TestServer::start().await;
    let day = DocId::Day(hz(), d("2026-11-30"));
    let hash = BlobHash::of(b"photo");
    let good_id = {
        // The id an honest phone derives: attach on a scratch store, read it back.
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Store::open(dir.path().join("s.sqlite3")).unwrap();
        scratch
            .import_dir(&sitesync_tests::harness::fixtures().join("small"))
            .unwrap();
        attach(&mut scratch, "2026-11-30", b"photo", "p.jpg");
        scratch.attachments(&hz(), d("2026-11-30")).unwrap()[0]
            .attachment
            .id
            .clone()
    };
    let record = |id: &str, sha: &str, size: i64, by: &str| {
        let mut c = Crafted::day(&day);
        c.put("day", id, "sha256", sha)
            .put("day", id, "size_bytes", size)
            .put("day", id, "media_type", "image/jpeg")
            .put("day", id, "caption", "")
            .put("day", id, "target", "day")
            .put("day", id, "added_by", by)
            .put("day", id, "added_at", "2026-11-30T08:00:00+08:00")
            .put("day", id, "deleted", false);
        c.bytes()
    };
    let cases = [
        ("not a hash", record(&good_id, "xyz", 5, "u-foreman-hz-01")),
        ("negative size", record(&good_id, hash.as_str(), -5, "u-foreman-hz-01")),
        ("too large", record(&good_id, hash.as_str(), 1 << 40, "u-foreman-hz-01")),
        (
            "foreign id",
            record(
                "att-0123456789abcdef0123456789abcdef",
                hash.as_str(),
                5,
                "u-foreman-hz-01",
            ),
        ),
        ("forged author", record(&good_id, hash.as_str(), 5, "u-manager-hz-01")),
    ];
    for (what, bytes) in cases {
        let mut c = RawClient::connect(server.addr, &server.device("u-foreman-hz-01").await)
            .await
            .unwrap();
        c.say_hello().await;
        let results = c.push(vec![(day.to_string(), bytes)]).await;
        let refused = match &results[0] {
            DocResult::Refused { .. } => true,
            DocResult::Partial { refused, .. } => !refused.is_empty(),
            _ => false,
        };
        assert!(refused, "{what}: {results:?}");
    }
    let (h, id) = (hash.clone(), day.clone());
    assert!(!server.store(move |s| s.references_blob(&id, &h).unwrap()).await);
    let mut c = RawClient::connect(server.addr, &server.device("u-foreman-hz-01").await)
        .await
        .unwrap();
    c.say_hello().await;
    let results = c
        .push(vec![(
            day.to_string(),
            record(&good_id, hash.as_str(), 5, "u-foreman-hz-01"),
        )])
        .await;
    assert!(matches!(results[0], DocResult::Synced(_)), "{results:?}");
    let id = day.clone();
    assert!(server.store(move |s| s.references_blob(&id, &hash).unwrap()).await);
}

/// Head office's 施工日志 takes a photo's bytes from the server's blob storage: an uploaded photo is
/// drawn as a thumbnail, one whose bytes the phone has not uploaded yet is listed without a picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_office_daily_log_draws_uploaded_photos_only() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = server.device("u-foreman-hz-01").await;
    let mut foreman = phone(dir.path(), "u-foreman-hz-01", &server.url(), &token);
    sync(&mut foreman).await;
    let uploaded = attach(&mut foreman, "2026-11-30", &png(300), "photo.png");
    sync(&mut foreman).await;
    assert_eq!(sync_blobs(&mut foreman, false).await.unwrap().uploaded, 1);
    let pending = attach(&mut foreman, "2026-11-30", &png(200), "later.png");
    sync(&mut foreman).await;

    let api = Api::new(&server, &server.device("u-office-1").await);
    let q = [("site", "site-hz-01"), ("date", "2026-11-30")];
    let log = api
        .json("/v1/reports/daily-log", &[&q[..], &[("format", "json")]].concat())
        .await;
    let here = |hash: &BlobHash| {
        log["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["sha256"] == hash.as_str())
            .unwrap_or_else(|| panic!("{hash} not in {log}"))["bytes_here"]
            .clone()
    };
    assert_eq!(here(&uploaded), true);
    assert_eq!(here(&pending), false);

    let (status, pdf) = api.get("/v1/reports/daily-log", &q).await;
    assert_eq!(status, 200);
    // One image XObject: the uploaded photo's thumbnail (krilla writes each image as one).
    let images = pdf.windows(15).filter(|w| w == b"/Subtype /Image").count();
    assert_eq!(images, 1, "only the uploaded photo is drawn");
    let file = dir.path().join("log.pdf");
    std::fs::write(&file, &pdf).unwrap();
    if let Ok(out) = std::process::Command::new("pdftotext")
        .args([file.to_str().unwrap(), "-"])
        .output()
    {
        let text: String = String::from_utf8(out.stdout).unwrap().split_whitespace().collect();
        assert!(text.contains("见下图") && text.contains("未收到原图"), "{text}");
    }
}

/// Partial uploads nobody came back for are deleted when the server starts (and then periodically),
/// by the age the server is configured with (a week by default); a younger one is kept and resumes.
/// On SQLite, where they are files; `uploads_staged_in_postgresql_…` checks the database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_partial_uploads_are_swept_at_start_and_younger_ones_kept() {
    let day = std::time::Duration::from_secs(24 * 3600);
    let (abandoned, recent) = (BlobHash::of(b"abandoned"), BlobHash::of(b"recent"));
    let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let written = paths.clone();
    let (a, r) = (abandoned.clone(), recent.clone());
    let server = TestServer::start_configured_on(Engine::Sqlite, move |state| {
        assert_eq!(state.connection_limits().staging_max_age, 7 * day, "a week by default");
        for (hash, age) in [(&a, 8 * day), (&r, 6 * day)] {
            let path = state.staging().path("d-0123abcd", hash).expect("SQLite stages files");
            std::fs::write(&path, b"the first bytes").unwrap();
            let f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.set_modified(std::time::SystemTime::now() - age).unwrap();
            written.lock().unwrap().push(path);
        }
        state
    })
    .await;
    let (old, young) = {
        let p = paths.lock().unwrap();
        (p[0].clone(), p[1].clone())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while old.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!old.exists(), "the upload idle for 8 days is deleted at start");
    assert!(young.exists(), "the upload idle for 6 days is kept");
    let state = server.state.clone();
    let offset = state.blobs(move |_, s| s.offset("d-0123abcd", &recent)).await.unwrap();
    assert_eq!(offset, 15, "and still resumes from where it stopped");
    let offset = state
        .blobs(move |_, s| s.offset("d-0123abcd", &abandoned))
        .await
        .unwrap();
    assert_eq!(offset, 0);
}

/// On PostgreSQL uploads in progress are rows every node shares: an idle one is swept by its age
/// (kept while a request of this node holds it), a younger one is kept and resumes, bytes are
/// appended only where the upload ends. (SQLite's files: the test above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_staged_in_postgresql_are_swept_by_age_and_appended_only_at_their_end() {
    if !sitesync_tests::pg::on_postgres() {
        return;
    }
    let server = TestServer::start().await;
    let state = server.state.clone();
    assert!(
        state.staging().path("d-0123abcd", &BlobHash::of(b"x")).is_none(),
        "not files"
    );
    let (old, young) = (BlobHash::of(b"abandoned"), BlobHash::of(b"recent"));
    let (o, y) = (old.clone(), young.clone());
    state
        .blobs(move |_, s| {
            for h in [&o, &y] {
                s.append("d-0123abcd", h, 0, b"the first")?;
                s.append("d-0123abcd", h, 9, b" bytes")?;
            }
            // A piece sent from an offset the upload is not at changes nothing.
            match s.append("d-0123abcd", &o, 3, b"xx") {
                Err(sitesync_server::Error::Conflict(m)) => assert!(m.contains("byte 15"), "{m}"),
                other => panic!("an append off the end: {other:?}"),
            }
            Ok(())
        })
        .await
        .unwrap();
    let day = 24 * 3600 * 1000i64;
    let ago = move |days: i64| chrono::Utc::now().timestamp_millis() - days * day;
    let (o, y) = (old.to_string(), young.to_string());
    server
        .sql(ServerDb::Credentials, move |sql| {
            for (h, t) in [(o, ago(8)), (y, ago(6))] {
                sql.exec(
                    "UPDATE blob_uploads SET touched_ms = ?1 WHERE sha256 = ?2",
                    &[t.into(), h.into()],
                )?;
            }
            Ok(())
        })
        .await;
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let (o, y) = (old.clone(), young.clone());
    let (swept, old_at, young_at) = state
        .blobs(move |_, s| Ok((s.sweep(week)?, s.offset("d-0123abcd", &o)?, s.offset("d-0123abcd", &y)?)))
        .await
        .unwrap();
    assert_eq!((swept, old_at, young_at), (1, 0, 15));
    let left: i64 = server
        .sql(ServerDb::Credentials, |sql| {
            sql.one("SELECT COUNT(*) FROM blob_upload_pieces", &[])?.int(0)
        })
        .await;
    assert_eq!(left, 2, "the swept upload's pieces went with it");
}
