//! A head-office dashboard as the browser page holds it: one `GET /v1/events` server-sent-events
//! stream, which says "change" with the server's change cursor whenever documents the user may read
//! changed (at most two a second). The page then refetches its figures; the bench only records
//! when each event came, to tell when a dashboard had heard of every change.
//!
//! Plain HTTP/1.1 over a TCP socket: the bench needs nothing of a full client for one streamed GET.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One open event stream and what it has heard.
pub struct Dashboard {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
    /// Events received (each one a refresh of the page).
    pub events: usize,
    /// The highest change cursor an event carried, and when it came.
    pub cursor: Option<(u64, Instant)>,
}

impl Dashboard {
    /// Opens the stream with a head-office device's bearer token and reads the response header.
    pub async fn open(addr: SocketAddr, token: &str) -> Result<Dashboard> {
        let mut tcp = TcpStream::connect(addr).await.context("dashboard connect")?;
        let request = format!(
            "GET /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await?;
        let mut lines = BufReader::new(tcp).lines();
        let status = lines.next_line().await?.context("no response to GET /v1/events")?;
        if !status.contains(" 200 ") {
            bail!("GET /v1/events answered {status:?}");
        }
        // The header ends at the first empty line.
        while let Some(l) = lines.next_line().await? {
            if l.is_empty() {
                break;
            }
        }
        Ok(Dashboard {
            lines,
            events: 0,
            cursor: None,
        })
    }

    /// Reads events until one carries a cursor of at least `target`, or `limit` passes with none;
    /// returns whether it came.
    pub async fn until(&mut self, target: u64, limit: std::time::Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.cursor.is_none_or(|(c, _)| c < target) {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Err(_) => return Ok(false),
                Ok(l) => l?.context("the server closed the event stream")?,
            };
            // Chunk sizes and keep-alive comments are lines too; only `data:` lines carry a cursor.
            if let Some(data) = line.trim().strip_prefix("data:") {
                let cursor: u64 = data.trim().parse().context("an event's data is its cursor")?;
                self.events += 1;
                if self.cursor.is_none_or(|(c, _)| cursor > c) {
                    self.cursor = Some((cursor, Instant::now()));
                }
            }
        }
        Ok(true)
    }
}
