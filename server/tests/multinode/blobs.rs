//! Attachments on a cluster: a photo's upload cut off at node A resumes at node B from the byte A
//! received, and node A then serves the whole file. Blobs and uploads in progress live in the
//! shared database, so no node keeps a byte of them on its own disk.

use sitesync_core::attachments::{BlobHash, Target};
use sitesync_core::store::attachments::AttachRequest;

use super::*;

/// `method path` with a bearer token and a raw body over HTTP/1.0: the status and the body's bytes.
async fn send(addr: SocketAddr, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 30 s")
        .unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer.get(split + 4..).unwrap_or_default().to_vec())
}

/// The upload's state as a node reports it: (offset, complete).
fn state(status: u16, body: &[u8]) -> (u64, bool) {
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    (v["offset"].as_u64().unwrap(), v["complete"].as_bool().unwrap())
}

/// Every file under `dir` (none for a missing directory).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { files(&p) } else { vec![p] }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_at_one_node_resumes_at_the_other_and_either_serves_it() {
    let Some(cluster) = Cluster::start().await else { return };
    let hz = site("site-hz-01");
    let date = d("2026-11-03");
    let token = cluster.device("u-foreman-hz-01").await;
    let mut foreman = cluster.phone("foreman", cluster.a.addr, &token);
    sync_once(&mut foreman).await.unwrap();
    // 2.5 MB of bytes that are not text, over several stored pieces.
    let photo: Vec<u8> = (0..2_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let hash = foreman
        .attach(&AttachRequest {
            site: hz.clone(),
            date,
            bytes: &photo,
            file_name: "IMG_0001.jpg",
            caption: "钢筋绑扎",
            target: Target::Day,
            gps: None,
            amend: None,
        })
        .unwrap()
        .sha256;
    assert_eq!(hash, BlobHash::of(&photo));
    // The day that references the photo reaches the database through A.
    sync_once(&mut foreman).await.unwrap();

    let upload = |offset: u64| {
        format!(
            "/v1/blobs/{hash}/upload?site={hz}&date={date}&size={}&offset={offset}",
            photo.len()
        )
    };
    let half = 1_300_000usize;
    // The connection to A ends after the first part: A keeps what arrived.
    let (status, body) = send(cluster.a.addr, "PUT", &upload(0), &token, &photo[..half]).await;
    assert_eq!(state(status, &body), (half as u64, false));
    // B knows where the upload stands, and takes the rest from there.
    let (status, body) = send(cluster.b.addr, "GET", &upload(0), &token, b"").await;
    assert_eq!(
        state(status, &body),
        (half as u64, false),
        "B sees the bytes A received"
    );
    let (status, body) = send(cluster.b.addr, "PUT", &upload(0), &token, &photo).await;
    assert_eq!(
        status, 409,
        "starting again from 0 at B is refused: the upload is further on"
    );
    assert!(String::from_utf8_lossy(&body).contains(&format!("byte {half}")));
    let (status, body) = send(cluster.b.addr, "PUT", &upload(half as u64), &token, &photo[half..]).await;
    assert_eq!(state(status, &body), (photo.len() as u64, true));

    // A serves the file B verified, to the site's manager, from any byte.
    let manager = cluster.device("u-manager-hz-01").await;
    let (status, bytes) = send(cluster.a.addr, "GET", &format!("/v1/blobs/{hash}"), &manager, b"").await;
    assert_eq!(status, 200);
    assert!(bytes == photo, "node A serves exactly the file ({} bytes)", bytes.len());
    // No node holds a byte of it on its own disk.
    for node in [&cluster.a, &cluster.b] {
        assert_eq!(files(&node.data.join("blobs")), Vec::<PathBuf>::new());
    }
    let pieces = query(&cluster.db.connect(), |sql| {
        sql.one("SELECT COUNT(*) FROM sitesync_auth.blob_upload_pieces", &[])?
            .int(0)
    });
    assert_eq!(pieces, 0, "the finished upload's staged pieces are gone");
}
