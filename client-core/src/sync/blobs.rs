//! The blob sync: moves attachment bytes between the phone and the server over HTTP, beside the
//! document sync and never in its way (a separate queue, separate requests; a failed or slow file
//! does not hold up the day's record). Resumable both ways: an upload asks the server how many bytes
//! arrived (`GET /v1/blobs/{sha256}/upload`) and continues from there, a download continues its
//! `.part` file with `Range: bytes=N-`. The protocol is in `docs/blobs.md`.
//!
//! Uploads go in requests of at most [`UPLOAD_PIECE`] bytes: memory stays bounded, the status
//! moves ("sending 40%") between pieces, and a cut connection loses at most what was in flight,
//! which the server kept anyway as it arrived.

use std::io::{Read, Seek, SeekFrom, Write};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Store;
use crate::error::{Error, Result};
use crate::ids::DocId;
use crate::store::attachments::PendingTransfer;
use crate::sync::status::{Binding, host_of, is_loopback_http};
use crate::sync::tls;

/// The most bytes one upload request carries: 4 MiB.
pub const UPLOAD_PIECE: usize = 4 * 1024 * 1024;

/// What one blob sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlobReport {
    /// Files the server now holds that it did not before this run.
    pub uploaded: usize,
    /// Files this phone now holds that it did not before this run.
    pub downloaded: usize,
    /// Bytes of files sent (request bodies, not headers).
    pub bytes_sent: u64,
    /// Bytes of files received.
    pub bytes_received: u64,
    /// Files left for a later run: not on the server yet, or refused (with why).
    pub waiting: Vec<(String, String)>,
    /// Whether nothing moved because the network is metered and the app chose unmetered only.
    pub skipped_metered: bool,
}

/// Moves every pending blob: uploads first (the phone's own evidence), then downloads. `metered`
/// is what the app knows of the current network; with the unmetered-only setting on, a metered
/// network moves nothing. A file that fails is recorded and the others still move; the call fails
/// only when the server cannot be reached or refuses the device.
pub async fn sync_blobs(store: &mut Store, metered: bool) -> Result<BlobReport> {
    let mut report = BlobReport::default();
    if metered && !store.blobs_on_metered()? {
        report.skipped_metered = true;
        return Ok(report);
    }
    let binding = store.binding()?.ok_or(Error::NotBound)?;
    for t in store.pending_transfers()? {
        let outcome = if t.upload {
            upload(store, &binding, &t, &mut report).await
        } else {
            download(store, &binding, &t, &mut report).await
        };
        match outcome {
            Ok(()) => {}
            Err(Waiting(why)) => report.waiting.push((t.sha256.to_string(), why)),
        }
    }
    Ok(report)
}

/// A file that did not move this time, and why (a sentence).
struct Waiting(String);

impl From<Error> for Waiting {
    fn from(e: Error) -> Waiting {
        Waiting(e.to_string())
    }
}

/// Where the server says an upload stands.
#[derive(Debug, Deserialize)]
struct UploadState {
    offset: u64,
    complete: bool,
}

fn day_query(doc: &DocId, size: u64) -> std::result::Result<String, Waiting> {
    match doc {
        DocId::Day(site, date) => Ok(format!("site={site}&date={date}&size={size}")),
        other => Err(Waiting(format!("{other} is not a day"))),
    }
}

async fn upload(
    store: &mut Store,
    b: &Binding,
    t: &PendingTransfer,
    report: &mut BlobReport,
) -> std::result::Result<(), Waiting> {
    let size = t.size.bytes();
    let query = day_query(&t.doc, size)?;
    let path = format!("/v1/blobs/{}/upload?{query}", t.sha256);
    let mut file = std::fs::File::open(store.blob_path(&t.sha256)).map_err(Error::from)?;
    loop {
        let (status, body) = request(b, Method::GET, &path, None, None).await?;
        let state: UploadState = answer(status, &body)?;
        store.set_transfer(t, state.offset, state.complete)?;
        if state.complete {
            report.uploaded += 1;
            return Ok(());
        }
        let len = (size - state.offset.min(size)).min(UPLOAD_PIECE as u64) as usize;
        let mut piece = vec![0u8; len];
        file.seek(SeekFrom::Start(state.offset)).map_err(Error::from)?;
        file.read_exact(&mut piece).map_err(Error::from)?;
        let put = format!("{path}&offset={}", state.offset);
        report.bytes_sent += len as u64;
        let (status, body) = match request(b, Method::PUT, &put, Some(piece), None).await {
            Ok(answer) => answer,
            Err(e) => {
                // The connection died mid-file; the server kept what arrived. Ask how much, so
                // the status shows it ("sending 48%"), if the server can be reached at all.
                if let Ok((status, body)) = request(b, Method::GET, &path, None, None).await
                    && let Ok(state) = answer::<UploadState>(status, &body)
                {
                    store.set_transfer(t, state.offset, state.complete)?;
                }
                return Err(e.into());
            }
        };
        if status == StatusCode::CONFLICT {
            // The server holds another offset (an earlier request landed after all): ask again.
            continue;
        }
        let state: UploadState = answer(status, &body)?;
        store.set_transfer(t, state.offset, state.complete)?;
        if state.complete {
            report.uploaded += 1;
            return Ok(());
        }
    }
}

async fn download(
    store: &mut Store,
    b: &Binding,
    t: &PendingTransfer,
    report: &mut BlobReport,
) -> std::result::Result<(), Waiting> {
    std::fs::create_dir_all(store.blob_dir()).map_err(Error::from)?;
    let part = store.blob_part_path(&t.sha256);
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    let have = if have >= t.size.bytes() { 0 } else { have };
    let path = format!("/v1/blobs/{}", t.sha256);
    let (status, mut body) = request_streaming(b, &path, have).await?;
    if status == StatusCode::NOT_FOUND {
        return Err(Waiting("not on the server yet".into()));
    }
    if !(status == StatusCode::OK || status == StatusCode::PARTIAL_CONTENT) {
        let bytes = collect(&mut body).await?;
        return Err(Waiting(refusal(status, &bytes).to_string()));
    }
    // A server that ignored the range sends the whole file: start the part again.
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(status == StatusCode::PARTIAL_CONTENT)
        .write(true)
        .truncate(status == StatusCode::OK)
        .open(&part)
        .map_err(Error::from)?;
    let mut received = if status == StatusCode::PARTIAL_CONTENT { have } else { 0 };
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Sync(format!("download cut: {e}")));
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                file.sync_all().map_err(Error::from)?;
                store.set_transfer(t, received, false)?;
                return Err(e.into());
            }
        };
        if let Ok(data) = frame.into_data() {
            if received + data.len() as u64 > t.size.bytes() {
                drop(file);
                let _ = std::fs::remove_file(&part);
                return Err(Waiting("the server sent more bytes than the file has".into()));
            }
            file.write_all(&data).map_err(Error::from)?;
            received += data.len() as u64;
            report.bytes_received += data.len() as u64;
        }
    }
    file.sync_all().map_err(Error::from)?;
    drop(file);
    if received < t.size.bytes() {
        store.set_transfer(t, received, false)?;
        return Err(Waiting("the download stopped early".into()));
    }
    store.finish_blob(&t.sha256)?;
    store.set_transfer(t, received, true)?;
    report.downloaded += 1;
    Ok(())
}

/// Reads a JSON answer, or the refusal's sentence as the error.
fn answer<T: serde::de::DeserializeOwned>(status: StatusCode, body: &[u8]) -> std::result::Result<T, Waiting> {
    if status.is_success() {
        serde_json::from_slice(body).map_err(|e| Waiting(format!("unreadable answer: {e}")))
    } else {
        Err(Waiting(refusal(status, body).to_string()))
    }
}

/// The server's refusal as an error: 401 is the device's (fatal for the run's caller), the rest a
/// sentence.
fn refusal(status: StatusCode, body: &[u8]) -> Error {
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    match status {
        StatusCode::UNAUTHORIZED => Error::Unauthorized(text),
        _ => Error::Sync(format!("{status}: {text}")),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens a connection to the server: TLS for `https://`, plain only to this machine (as the
/// document sync, `sync::client`).
async fn connect(b: &Binding) -> Result<Box<dyn Io>> {
    let host = host_of(&b.server).to_string();
    let rest = b.server.split_once("://").map_or(b.server.as_str(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let https = b.server.starts_with("https://");
    let port = authority
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || authority.starts_with('['))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .unwrap_or(if https { 443 } else { 80 });
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| Error::Sync(format!("cannot reach {}: {e}", b.server)))?;
    if https {
        let config = tls::client_config(b.ca_cert.as_deref())?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| Error::Tls {
            reason: format!("{host} is not a host name"),
        })?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls { reason: e.to_string() })?;
        Ok(Box::new(stream))
    } else if is_loopback_http(&b.server) {
        Ok(Box::new(tcp))
    } else {
        Err(Error::Tls {
            reason: format!(
                "{} is plain http:// to another host: bind the store to https://",
                b.server
            ),
        })
    }
}

async fn send(
    b: &Binding,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    range_from: Option<u64>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    send_typed(b, method, path, body, range_from, "application/octet-stream").await
}

/// [`send`] with a body of `content_type`.
async fn send_typed(
    b: &Binding,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    range_from: Option<u64>,
    content_type: &str,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let io = connect(b).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Error::Sync(format!("HTTP: {e}")))?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host_of(&b.server))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {}", b.token));
    if let Some(from) = range_from.filter(|n| *n > 0) {
        req = req.header(hyper::header::RANGE, format!("bytes={from}-"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() {
        req = req.header(hyper::header::CONTENT_TYPE, content_type);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Error::Sync(format!("HTTP: {e}")))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| Error::Sync(format!("HTTP: {e}")))?;
    if resp.status() == StatusCode::UNAUTHORIZED {
        return Err(Error::Unauthorized("the server refused this device's token".into()));
    }
    Ok(resp)
}

async fn collect(body: &mut hyper::body::Incoming) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Sync(format!("HTTP: {e}")))?;
        if let Ok(d) = frame.into_data() {
            out.extend_from_slice(&d);
        }
    }
    Ok(out)
}

/// One POST with a JSON body, its whole answer read.
pub(crate) async fn post_json(b: &Binding, path: &str, body: Vec<u8>) -> Result<(StatusCode, Vec<u8>)> {
    let resp = send_typed(b, Method::POST, path, Some(body), None, "application/json").await?;
    let status = resp.status();
    let mut body = resp.into_body();
    Ok((status, collect(&mut body).await?))
}

/// One request, its whole answer read.
pub(crate) async fn request(
    b: &Binding,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    range_from: Option<u64>,
) -> Result<(StatusCode, Vec<u8>)> {
    let resp = send(b, method, path, body, range_from).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    Ok((status, collect(&mut body).await?))
}

/// A `GET` whose body is read as it arrives.
async fn request_streaming(b: &Binding, path: &str, range_from: u64) -> Result<(StatusCode, hyper::body::Incoming)> {
    let resp = send(b, Method::GET, path, None, Some(range_from)).await?;
    Ok((resp.status(), resp.into_body()))
}
