//! Memory per connected idle device: thousands of real WebSocket connections say hello to a real
//! server on loopback and stay connected; the process's resident memory grows by about that many
//! times what one idle connection costs the server. The clients are bare sockets (no WebSocket
//! library, no buffers of their own) so that what grows is the server's.
//!
//! Ignored by default: it opens thousands of sockets. Run it with
//! `SITESYNC_IDLE_DEVICES=2000 cargo test -p sitesync-tests --test sync idle -- --ignored --nocapture`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use sitesync_core::sync::protocol::{self, ClientMsg, ServerMsg};
use sitesync_server::limits::{ConnectionLimits, Limits};
use sitesync_tests::harness::TestServer;

/// The process's resident memory, bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A sync connection on a bare socket: the upgrade written by hand, frames masked by hand.
struct Bare(TcpStream);

impl Bare {
    fn open(addr: SocketAddr, token: &str) -> Bare {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /v1/sync HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Bare(s)
    }

    fn send(&mut self, msg: &ClientMsg) {
        let body = protocol::encode(msg);
        let mut frame = vec![0x82];
        match body.len() {
            n @ 0..126 => frame.push(0x80 | n as u8),
            n @ 126..65536 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(body.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.0.write_all(&frame).unwrap();
    }

    /// The next binary message (pings skipped).
    fn recv(&mut self) -> ServerMsg {
        loop {
            let mut h = [0u8; 2];
            self.0.read_exact(&mut h).unwrap();
            let len = match h[1] & 0x7f {
                126 => {
                    let mut l = [0u8; 2];
                    self.0.read_exact(&mut l).unwrap();
                    u16::from_be_bytes(l) as usize
                }
                127 => {
                    let mut l = [0u8; 8];
                    self.0.read_exact(&mut l).unwrap();
                    u64::from_be_bytes(l) as usize
                }
                n => n as usize,
            };
            let mut body = vec![0u8; len];
            self.0.read_exact(&mut body).unwrap();
            if h[0] & 0x0f == 2 {
                return protocol::decode(&body).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "opens thousands of sockets; run on its own to measure"]
async fn idle_devices_cost_the_server_little_memory_each() {
    let n: usize = std::env::var("SITESYNC_IDLE_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let limits = Limits {
        connections_per_device: n + 1,
        sync_per_second: 1_000_000,
        sync_burst: 1_000_000,
        ..Limits::default()
    };
    let front = ConnectionLimits {
        max_connections: n + 64,
        ..ConnectionLimits::default()
    };
    let server = TestServer::start_configured(move |s| s.with_limits(limits).with_connection_limits(front)).await;
    let token = server.device("u-foreman-hz-01").await;
    let addr = server.addr;
    let measured = tokio::task::spawn_blocking(move || {
        let key = [7u8; 32];
        // A first sync: the device then holds the site's documents, as an idle phone does.
        let mut first = Bare::open(addr, &token);
        first.send(&ClientMsg::Hello { cursor: 0, key });
        let ServerMsg::Welcome {
            cursor, more: false, ..
        } = first.recv()
        else {
            panic!("the fixture company is welcomed in one frame")
        };
        first.send(&ClientMsg::Applied { cursor });
        let before = rss();
        let mut open = Vec::with_capacity(n);
        for _ in 0..n {
            let mut c = Bare::open(addr, &token);
            c.send(&ClientMsg::Hello { cursor, key });
            assert!(matches!(c.recv(), ServerMsg::Welcome { .. }));
            open.push(c);
        }
        // Let the server's tasks settle after the last welcome.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let after = rss();
        (before, after, open, first)
    })
    .await
    .unwrap();
    let (before, after, open, first) = measured;
    let per = after.saturating_sub(before) / n as u64;
    eprintln!(
        "{n} idle devices: RSS {:.1} MiB → {:.1} MiB, {per} bytes per connection ({:.0} MiB per 10,000)",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per as f64 * 10_000.0 / 1048576.0,
    );
    drop((open, first));
    server.stop().await;
}
