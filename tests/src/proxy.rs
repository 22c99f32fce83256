//! A fault-injecting TCP proxy that sits between a client and a real server on loopback.
//!
//! The proxy forwards bytes in both directions and can refuse connections, cut them after a
//! byte budget (mid-frame), delay every chunk, or cut every open connection on demand. All
//! randomness comes from a small deterministic PRNG seeded per proxy, so a failing run can be
//! replayed from [`Faults::seed`]: connection `n` (in accept order) always draws the same values.
//!
//! Length: under 400 lines of code; the rest is its own tests, which prove each fault before other
//! tests rely on it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Size of the buffer each direction reads into before forwarding.
const CHUNK: usize = 8 * 1024;

/// The faults a [`FaultProxy`] injects into the connections it accepts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Probability in `[0, 1]` that an accepted connection is closed immediately.
    pub refuse: f64,
    /// Which connections get a byte budget, and how large; `None` cuts none.
    pub cut: Option<Cut>,
    /// Upper bound of the random delay applied before forwarding each read chunk.
    pub max_delay: Duration,
    /// Seed of the proxy's PRNG, so a run can be replayed.
    pub seed: u64,
}

/// Byte budgets: a connection that reaches its budget in either direction is cut abruptly.
///
/// Only a share of connections gets one. If every connection did, a phone whose backlog had
/// grown past the largest budget could never get through, and each failure grows the backlog:
/// the run would measure the proxy, not the sync engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// Probability in `[0, 1]` that a connection (not refused) gets a budget.
    pub chance: f64,
    /// Per-direction budget range `(lo, hi)` in bytes, drawn uniformly for each direction.
    pub after: (usize, usize),
}

/// Counters describing what a [`FaultProxy`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted by the listener, including those then refused.
    pub accepted: u64,
    /// Accepted connections closed immediately because of [`Faults::refuse`].
    pub refused: u64,
    /// Connections cut abruptly by a byte budget or by [`FaultProxy::cut_all`].
    pub cut: u64,
}

/// A running fault-injecting proxy on `127.0.0.1` that stops and closes everything when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

/// State shared between the handle, the accept loop and the connection tasks.
#[derive(Debug)]
struct Shared {
    /// Where connections accepted from now on are forwarded (see [`FaultProxy::set_upstream`]).
    upstream: Mutex<SocketAddr>,
    faults: Mutex<Faults>,
    accepted: AtomicU64,
    refused: AtomicU64,
    cut: AtomicU64,
    /// Bumped by `cut_all`; every connection subscribed before the bump cuts itself.
    cut_gen: watch::Sender<u64>,
}

impl FaultProxy {
    /// Binds a loopback listener on an ephemeral port and starts forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr, faults: Faults) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (cut_gen, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            faults: Mutex::new(faults),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            cut_gen,
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(FaultProxy {
            addr,
            shared,
            accept_task,
        })
    }

    /// Returns the loopback address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the faults; the change applies to connections accepted from now on.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Forwards connections accepted from now on to `upstream` (a failover: the node behind the
    /// proxy died and another takes its place). Open connections keep theirs; [`FaultProxy::cut_all`]
    /// ends them.
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.shared.upstream.lock().unwrap_or_else(PoisonError::into_inner) = upstream;
    }

    /// Returns a snapshot of the proxy's counters.
    pub fn stats(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.shared.accepted.load(Ordering::SeqCst),
            refused: self.shared.refused.load(Ordering::SeqCst),
            cut: self.shared.cut.load(Ordering::SeqCst),
        }
    }

    /// Abruptly closes every proxied connection that is currently open.
    pub fn cut_all(&self) {
        self.shared
            .cut_gen
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connection tasks, so aborting it aborts them all,
        // which drops (and thereby closes) every socket.
        self.accept_task.abort();
    }
}

/// Accepts connections until aborted, reaping finished connection tasks as it goes.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => on_accept(client, &shared, &mut conns),
                // Typically fd exhaustion; back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Applies the per-connection faults to a freshly accepted client and spawns its forwarding task.
fn on_accept(client: TcpStream, shared: &Arc<Shared>, conns: &mut JoinSet<()>) {
    let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
    let faults = shared.faults.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut rng = Rng::for_connection(faults.seed, index);
    if rng.chance(faults.refuse) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        close_abruptly(client);
        return;
    }
    // Draw every value whatever the outcome, so connection `n` replays the same at one seed.
    let budgets = faults.cut.map(|cut| {
        let (lo, hi) = cut.after;
        let picked = rng.chance(cut.chance);
        let budgets = (rng.in_range(lo, hi), rng.in_range(lo, hi));
        (picked, budgets)
    });
    let budgets = budgets.and_then(|(picked, budgets)| picked.then_some(budgets));
    let plan = ConnPlan {
        upstream: *shared.upstream.lock().unwrap_or_else(PoisonError::into_inner),
        c2u_budget: budgets.map(|(c2u, _)| c2u),
        u2c_budget: budgets.map(|(_, u2c)| u2c),
        max_delay: faults.max_delay,
        c2u_rng: Rng::new(rng.next_u64()),
        u2c_rng: Rng::new(rng.next_u64()),
    };
    // Subscribe before spawning so a `cut_all` issued from now on is never missed.
    let cut_rx = shared.cut_gen.subscribe();
    conns.spawn(run_connection(client, Arc::clone(shared), plan, cut_rx));
}

/// What was decided for one connection at accept time: where it goes, and its random faults.
struct ConnPlan {
    upstream: SocketAddr,
    c2u_budget: Option<usize>,
    u2c_budget: Option<usize>,
    max_delay: Duration,
    c2u_rng: Rng,
    u2c_rng: Rng,
}

/// How one direction of a connection (or the whole connection) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The reader reached EOF and the half-close was forwarded.
    Eof,
    /// The byte budget was reached, or `cut_all` was called.
    Cut,
    /// An I/O error occurred on either side.
    Error,
}

/// Connects to the upstream and forwards both directions until they finish, fail or get cut.
async fn run_connection(mut client: TcpStream, shared: Arc<Shared>, plan: ConnPlan, mut cut_rx: watch::Receiver<u64>) {
    let ConnPlan {
        upstream: to,
        c2u_budget,
        u2c_budget,
        max_delay,
        mut c2u_rng,
        mut u2c_rng,
    } = plan;
    let mut upstream = tokio::select! {
        connected = TcpStream::connect(to) => match connected {
            Ok(upstream) => upstream,
            Err(_) => return close_abruptly(client),
        },
        _ = cut_rx.changed() => {
            shared.cut.fetch_add(1, Ordering::SeqCst);
            return close_abruptly(client);
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let end = {
        let (mut client_rd, mut client_wr) = client.split();
        let (mut upstream_rd, mut upstream_wr) = upstream.split();
        let c2u = pump(&mut client_rd, &mut upstream_wr, c2u_budget, max_delay, &mut c2u_rng);
        let u2c = pump(&mut upstream_rd, &mut client_wr, u2c_budget, max_delay, &mut u2c_rng);
        tokio::pin!(c2u, u2c);
        let (mut c2u_done, mut u2c_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut c2u, if !c2u_done => match end {
                    End::Eof => c2u_done = true,
                    other => break other,
                },
                end = &mut u2c, if !u2c_done => match end {
                    End::Eof => u2c_done = true,
                    other => break other,
                },
                // The sender lives in `shared`, which this task keeps alive, so this only fires on cut_all.
                _ = cut_rx.changed() => break End::Cut,
            }
            if c2u_done && u2c_done {
                break End::Eof;
            }
        }
    };

    match end {
        // Both sides already half-closed each other; a plain drop finishes the close gracefully.
        End::Eof => {}
        End::Cut => {
            // Count before closing so a client that observes the close also observes the count.
            shared.cut.fetch_add(1, Ordering::SeqCst);
            close_abruptly(client);
            close_abruptly(upstream);
        }
        End::Error => {
            close_abruptly(client);
            close_abruptly(upstream);
        }
    }
}

/// Forwards bytes from `reader` to `writer`, honouring the byte budget and the random delay.
async fn pump<R, W>(reader: &mut R, writer: &mut W, budget: Option<usize>, max_delay: Duration, rng: &mut Rng) -> End
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let mut remaining = budget;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => {
                // Forward the half-close so request/response protocols that rely on EOF still work.
                return match writer.shutdown().await {
                    Ok(()) => End::Eof,
                    Err(_) => End::Error,
                };
            }
            Ok(n) => n,
            Err(_) => return End::Error,
        };
        if !max_delay.is_zero() {
            tokio::time::sleep(rng.duration_up_to(max_delay)).await;
        }
        match remaining {
            Some(left) if n >= left => {
                // Forward only up to the budget (cutting mid-frame), then cut the connection.
                if writer.write_all(&buf[..left]).await.is_err() {
                    return End::Error;
                }
                return End::Cut;
            }
            Some(left) => remaining = Some(left - n),
            None => {}
        }
        if writer.write_all(&buf[..n]).await.is_err() {
            return End::Error;
        }
    }
}

/// Closes a socket with a TCP reset instead of an orderly FIN, like a connection lost mid-stream.
fn close_abruptly(stream: TcpStream) {
    // If SO_LINGER cannot be set, a plain close is still a close.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// xorshift64*: a tiny deterministic PRNG, good enough for fault injection and trivially replayable.
#[derive(Debug, Clone)]
struct Rng {
    state: u64,
}

impl Rng {
    /// Creates a generator from `seed`, scrambled so that nearby seeds give unrelated streams.
    fn new(seed: u64) -> Rng {
        // SplitMix64 finaliser; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    /// Creates the generator for the `index`-th accepted connection of a proxy seeded with `seed`.
    fn for_connection(seed: u64, index: u64) -> Rng {
        Rng::new(seed ^ Rng::new(index).next_u64())
    }

    /// Returns the next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Returns a uniform float in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns true with probability `p` (clamped to `[0, 1]`).
    fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Returns a value uniform in `[0, max]`, inclusive.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(span) => self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    /// Returns a value uniform in `[lo, hi]`, inclusive (the bounds may be given in either order).
    fn in_range(&mut self, lo: usize, hi: usize) -> usize {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        lo + self.up_to((hi - lo) as u64) as usize
    }

    /// Returns a duration uniform in `[0, max]`, with nanosecond resolution.
    fn duration_up_to(&mut self, max: Duration) -> Duration {
        let max_nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.up_to(max_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generous bound for every wait; the tests finish in milliseconds when healthy.
    const WAIT: Duration = Duration::from_secs(10);

    /// Starts an echo server on loopback and returns its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut rd, mut wr) = stream.split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                    let _ = wr.shutdown().await;
                });
            }
        });
        addr
    }

    /// Reads until EOF or an error (a reset counts as closed) and returns what arrived first.
    async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends `msg` and expects it echoed back exactly.
    async fn round_trip(stream: &mut TcpStream, msg: &[u8]) {
        stream.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(WAIT, stream.read_exact(&mut back))
            .await
            .expect("echo timed out")
            .unwrap();
        assert_eq!(back, msg);
    }

    #[tokio::test]
    async fn no_faults_round_trips_bytes_exactly() {
        let proxy = FaultProxy::start(echo_server().await, Faults::default()).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let payload: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();

        let (mut rd, mut wr) = client.split();
        let send = async {
            wr.write_all(&payload).await.unwrap();
            wr.shutdown().await.unwrap();
        };
        let recv = async {
            let mut back = Vec::new();
            rd.read_to_end(&mut back).await.unwrap();
            back
        };
        let ((), back) = tokio::time::timeout(WAIT, async { tokio::join!(send, recv) })
            .await
            .expect("round trip timed out");

        assert_eq!(back, payload);
        let stats = proxy.stats();
        assert_eq!(
            stats,
            ProxyStats {
                accepted: 1,
                refused: 0,
                cut: 0
            }
        );
    }

    #[tokio::test]
    async fn delays_preserve_bytes_and_order() {
        let faults = Faults {
            max_delay: Duration::from_millis(2),
            seed: 7,
            ..Faults::default()
        };
        let proxy = FaultProxy::start(echo_server().await, faults).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        for i in 0..20u8 {
            round_trip(&mut client, &[i; 100]).await;
        }
    }

    #[tokio::test]
    async fn cut_after_forwards_at_most_the_budget_then_closes() {
        let faults = Faults {
            cut: Some(Cut {
                chance: 1.0,
                after: (10, 10),
            }),
            seed: 42,
            ..Faults::default()
        };
        let proxy = FaultProxy::start(echo_server().await, faults).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

        // Under budget: forwarded untouched in both directions.
        round_trip(&mut client, b"abcd").await;
        // Over budget: only 6 more bytes may reach the server, then the proxy cuts.
        let _ = client.write_all(&[b'x'; 100]).await;
        let rest = tokio::time::timeout(WAIT, read_until_closed(&mut client))
            .await
            .expect("connection was not closed");

        assert!(rest.len() <= 6, "received {} bytes past the first 4", rest.len());
        assert!(rest.iter().all(|&b| b == b'x'));
        assert_eq!(proxy.stats().cut, 1);
    }

    #[tokio::test]
    async fn refuse_closes_immediately() {
        let faults = Faults {
            refuse: 1.0,
            ..Faults::default()
        };
        let proxy = FaultProxy::start(echo_server().await, faults).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

        let received = tokio::time::timeout(WAIT, read_until_closed(&mut client))
            .await
            .expect("refused connection was not closed");

        assert!(received.is_empty());
        assert_eq!(
            proxy.stats(),
            ProxyStats {
                accepted: 1,
                refused: 1,
                cut: 0
            }
        );
    }

    #[tokio::test]
    async fn cut_all_closes_idle_connections_and_new_ones_still_work() {
        let proxy = FaultProxy::start(echo_server().await, Faults::default()).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        // A completed round trip proves the proxied connection is open and registered.
        round_trip(&mut client, b"ping").await;

        proxy.cut_all();
        let received = tokio::time::timeout(WAIT, read_until_closed(&mut client))
            .await
            .expect("cut_all did not close the idle connection");
        assert!(received.is_empty());
        assert_eq!(proxy.stats().cut, 1);

        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut fresh, b"still alive").await;
    }

    /// Starts a server on loopback that greets each connection with `tag`, then echoes.
    async fn tagged_server(tag: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if stream.write_all(tag).await.is_ok() {
                        let (mut rd, mut wr) = stream.split();
                        let _ = tokio::io::copy(&mut rd, &mut wr).await;
                    }
                });
            }
        });
        addr
    }

    /// Connects through the proxy and returns the connection with the greeting of the server behind.
    async fn greeted(proxy: &FaultProxy) -> (TcpStream, [u8; 1]) {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut tag = [0u8; 1];
        tokio::time::timeout(WAIT, stream.read_exact(&mut tag))
            .await
            .expect("no greeting")
            .unwrap();
        (stream, tag)
    }

    #[tokio::test]
    async fn set_upstream_sends_new_connections_elsewhere_and_cut_all_ends_the_old_ones() {
        let (first, second) = (tagged_server(b"1").await, tagged_server(b"2").await);
        let proxy = FaultProxy::start(first, Faults::default()).await.unwrap();
        let (mut old, tag) = greeted(&proxy).await;
        assert_eq!(&tag, b"1");

        proxy.set_upstream(second);
        let (mut new, tag) = greeted(&proxy).await;
        assert_eq!(
            &tag, b"2",
            "a connection accepted after the switch goes to the new upstream"
        );
        round_trip(&mut old, b"still the first").await;

        proxy.cut_all();
        let received = tokio::time::timeout(WAIT, read_until_closed(&mut old))
            .await
            .expect("cut_all did not close the connection to the old upstream");
        assert!(received.is_empty());
        // Every open connection is cut, the new upstream's too; a reconnect goes to the new one.
        tokio::time::timeout(WAIT, read_until_closed(&mut new))
            .await
            .expect("cut_all did not close the connection to the new upstream");
        assert_eq!(proxy.stats().cut, 2);
        let (_, tag) = greeted(&proxy).await;
        assert_eq!(&tag, b"2");
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_open_connections() {
        let proxy = FaultProxy::start(echo_server().await, Faults::default()).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        round_trip(&mut client, b"ping").await;

        drop(proxy);
        let received = tokio::time::timeout(WAIT, read_until_closed(&mut client))
            .await
            .expect("dropping the proxy did not close the connection");
        assert!(received.is_empty());
    }

    #[test]
    fn rng_is_deterministic_per_seed_and_connection() {
        let draw = |seed, index| {
            let mut rng = Rng::for_connection(seed, index);
            (0..8).map(|_| rng.in_range(3, 17)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert!(draw(9, 4).iter().all(|v| (3..=17).contains(v)));

        let mut rng = Rng::new(0);
        assert!((0..1000).all(|_| rng.duration_up_to(Duration::from_millis(5)) <= Duration::from_millis(5)));
        assert!((0..1000).all(|_| !rng.chance(0.0) && rng.chance(1.0)));
    }
}
