//! A real server on loopback with the fixture company, and phones (real stores) bound to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use futures_util::{SinkExt, StreamExt};
use sitesync_core::Store;
use sitesync_core::ids::DocId;
use sitesync_core::import::Company;
use sitesync_core::signing::{ChangeSig, Keypair};
use sitesync_core::store::sql::Sql;
use sitesync_core::sync::protocol::{self, ClientMsg, DocResult, DocSync, ServerMsg};
use sitesync_server::AppState;
use sitesync_server::storage::{Location, PgDatabase};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::pg::TestDatabase;

/// The repository's fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A server running in this process on 127.0.0.1:0, with the fixture company imported (no logs).
///
/// Its state lives where the suite's engine says ([`crate::pg::on_postgres`]): SQLite files in
/// `dir`, or with `SITESYNC_TEST_ENGINE=postgres` a fresh PostgreSQL database of its own.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, to inspect the server's own store.
    pub state: AppState,
    /// Its data directory (removed on drop).
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task.
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The PostgreSQL database the state lives in, if it does. Declared after `state` so that it is
    /// dropped (and the database with it) after the state; `stop` waits for the server first. A
    /// server dropped without `stop` may still hold connections in aborted tasks: the database is
    /// dropped `WITH (FORCE)`, which closes them.
    database: Option<TestDatabase>,
}

/// Where a test server keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The suite's engine: PostgreSQL with `SITESYNC_TEST_ENGINE=postgres`, else SQLite.
    Suite,
    /// SQLite files in the data directory, whatever the suite's engine: for a test about those files.
    Sqlite,
}

/// One of a server's two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerDb {
    /// Tenancy and credentials: `server.sqlite3`, or the `sitesync_auth` schema.
    Credentials,
    /// The documents and their projections: `documents.sqlite3`, or the `sitesync_docs` schema.
    Documents,
}

/// Opens a server's state in `dir` on `engine`, off the runtime's threads (the PostgreSQL client
/// blocks on a runtime of its own); returns it with the database it lives in, if any.
async fn open_state(dir: &Path, engine: Engine) -> (AppState, Option<TestDatabase>) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let database = match engine {
            Engine::Suite => crate::pg::engine_database(),
            Engine::Sqlite => None,
        };
        let location = match &database {
            None => Location::Sqlite,
            Some(db) => Location::Postgres {
                url: db.url().to_string(),
                // Few: tests run servers side by side on one PostgreSQL, whose default cap is 100
                // connections, and each server also keeps three for documents and one to listen.
                connections: 4,
            },
        };
        (AppState::open_at(&dir, &location).unwrap(), database)
    })
    .await
    .unwrap()
}

impl TestServer {
    /// Starts a server with the fixture company imported.
    pub async fn start() -> TestServer {
        Self::start_with_timing(sitesync_server::state::KeepAlive::default()).await
    }

    /// Starts a server with the fixture company imported and the given keep-alive timing.
    pub async fn start_with_timing(timing: sitesync_server::state::KeepAlive) -> TestServer {
        Self::start_with(timing, sitesync_server::limits::Limits::default()).await
    }

    /// Starts a server with the fixture company imported and the given limits.
    pub async fn start_with_limits(limits: sitesync_server::limits::Limits) -> TestServer {
        Self::start_with(sitesync_server::state::KeepAlive::default(), limits).await
    }

    /// Starts a server with the fixture company imported, keep-alive timing and limits.
    pub async fn start_with(
        timing: sitesync_server::state::KeepAlive,
        limits: sitesync_server::limits::Limits,
    ) -> TestServer {
        Self::start_configured(move |s| s.with_timing(timing).with_limits(limits)).await
    }

    /// Starts a server with the fixture company imported, its state set up by `configure` (front-door
    /// limits, session lifetimes …).
    pub async fn start_configured(configure: impl FnOnce(AppState) -> AppState) -> TestServer {
        Self::start_configured_on(Engine::Suite, configure).await
    }

    /// [`TestServer::start_configured`] on `engine`.
    pub async fn start_configured_on(engine: Engine, configure: impl FnOnce(AppState) -> AppState) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let (state, database) = open_state(dir.path(), engine).await;
        let state = configure(state);
        let company: Company = sitesync_core::import::read_json(&fixtures().join("company.json")).unwrap();
        state
            .both(move |auth, store| sitesync_server::admin::import_company(auth, store, &company))
            .await
            .unwrap();
        Self::serve(dir, state, database).await
    }

    /// Starts a server on a fresh data directory loaded, as `serve --demo` loads it, with the demo
    /// company of `seed` planned for `now`; returns it with what the demo says it loaded.
    pub async fn start_demo(
        seed: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (TestServer, sitesync_server::demo::Loaded) {
        let dir = tempfile::tempdir().unwrap();
        let (state, database) = open_state(dir.path(), Engine::Suite).await;
        let loaded = sitesync_server::demo::load(&state, seed, now).await.unwrap();
        (Self::serve(dir, state, database).await, loaded)
    }

    /// Starts a server on an existing data directory of SQLite files (a restored backup), taking
    /// ownership of it.
    pub async fn start_on(dir: tempfile::TempDir) -> TestServer {
        let (state, database) = open_state(dir.path(), Engine::Sqlite).await;
        Self::serve(dir, state, database).await
    }

    /// Serves `state` on a free loopback port until stopped.
    async fn serve(dir: tempfile::TempDir, state: AppState, database: Option<TestDatabase>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(sitesync_server::run(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            state,
            dir,
            stop: Some(stop),
            task: Some(task),
            database,
        }
    }

    /// Runs `f` on a connection of its own to one of the server's databases (a SQLite file opened
    /// read-only, or the PostgreSQL schema), off the runtime's threads: for a test that checks what
    /// the server stored, on either engine.
    pub async fn sql<T: Send + 'static>(
        &self,
        db: ServerDb,
        f: impl FnOnce(&dyn Sql) -> sitesync_core::Result<T> + Send + 'static,
    ) -> T {
        let (file, schema) = match db {
            ServerDb::Credentials => ("server.sqlite3", sitesync_server::storage::AUTH_SCHEMA),
            ServerDb::Documents => ("documents.sqlite3", sitesync_server::storage::DOCS_SCHEMA),
        };
        let path = self.dir.path().join(file);
        let url = self.database.as_ref().map(|db| db.url().to_string());
        tokio::task::spawn_blocking(move || match url {
            None => {
                let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                f(&conn)
            }
            Some(url) => {
                let db = PgDatabase::connect_in(&url, 1, Some(schema))?;
                sitesync_server::storage::with(&db, f)
            }
        })
        .await
        .unwrap()
        .unwrap()
    }

    /// The server's data directory (its SQLite databases, tokens), for a test that reads its files.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The base URL phones use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Enrolls a device for a fixture user; returns its token.
    pub async fn device(&self, user: &str) -> String {
        let user = user.to_string();
        self.state.auth(move |a| a.add_device(&user, "test")).await.unwrap().1
    }

    /// Enrolls a device and returns its id and token.
    pub async fn device_with_id(&self, user: &str) -> (String, String) {
        let user = user.to_string();
        self.state.auth(move |a| a.add_device(&user, "test")).await.unwrap()
    }

    /// Adds a second organisation with one site (the small fixture's roster under another id) and
    /// one foreman of it, `user`.
    pub async fn add_org(&self, org: &str, site: &str, user: &str) {
        let mut other: Company = sitesync_core::import::read_json(&fixtures().join("small/company.json")).unwrap();
        other.org.id = org.parse().unwrap();
        other.sites[0].id = site.parse().unwrap();
        other.users = vec![
            serde_json::from_value(serde_json::json!({"id": user, "name": user, "role": "foreman", "sites": [site]}))
                .unwrap(),
        ];
        self.state
            .both(move |a, s| sitesync_server::admin::import_company(a, s, &other))
            .await
            .unwrap();
    }

    /// Gives `store` (a scratch store a raw client signs with) the server's master data of `site`,
    /// so that it can write the site's days.
    pub async fn copy_master_data(&self, store: &mut Store, site: &sitesync_core::ids::SiteId) {
        let id = DocId::Site(site.clone());
        let at = id.clone();
        let bytes = self.store(move |s| s.export_changes(&at, &[]).unwrap().unwrap()).await;
        store.merge_changes(&id, &bytes).unwrap();
    }

    /// Runs `f` on the server's own document store.
    pub async fn store<T: Send + 'static>(&self, f: impl FnOnce(&mut Store) -> T + Send + 'static) -> T {
        self.state.both(move |_, s| Ok(f(s))).await.unwrap()
    }

    /// Stops the server and waits for it to finish (live connections are closed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A phone: a store in `dir` bound to `url` with `token`.
pub fn phone(dir: &Path, name: &str, url: &str, token: &str) -> Store {
    let mut s = Store::open(dir.join(format!("{name}.sqlite3"))).unwrap();
    s.set_user(name).unwrap();
    s.bind(url, token).unwrap();
    s
}

/// A raw protocol connection, for tests that send what a well-behaved phone never would. It skips
/// the phone's own rule checks, not the signatures every push needs since protocol version 2: its
/// `Hello` registers a signing key to its device, and what it pushes is signed with that key
/// ([`RawClient::signed`]) or by the scratch store whose key it registered ([`store_push`]).
pub struct RawClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// The public key this client's `Hello` registers to its device.
    key: [u8; 32],
    /// Its secret half, when the client signs for itself (`None` when a scratch store signs).
    signer: Option<Keypair>,
}

impl RawClient {
    /// Connects with a token and a fresh signing key; `Err` carries the HTTP status of a refused
    /// upgrade.
    pub async fn connect(addr: SocketAddr, token: &str) -> Result<RawClient, u16> {
        Self::connect_with_key(addr, token, Keypair::generate()).await
    }

    /// Connects with a token, to sign with `key` (another client's, to prove a key belongs to one
    /// device).
    pub async fn connect_with_key(addr: SocketAddr, token: &str, key: Keypair) -> Result<RawClient, u16> {
        let socket = Self::open(addr, token).await?;
        Ok(RawClient {
            socket,
            key: key.public(),
            signer: Some(key),
        })
    }

    /// Connects with a token as the device of a scratch store: its `Hello` registers the store's
    /// key, and the store signs what is pushed ([`store_push`]).
    pub async fn connect_as(addr: SocketAddr, token: &str, store: &Store) -> Result<RawClient, u16> {
        let socket = Self::open(addr, token).await?;
        Ok(RawClient {
            socket,
            key: store.public_key(),
            signer: None,
        })
    }

    /// Connects presenting `headers` (a session cookie and an `Origin`, say, or nothing at all),
    /// with a fresh signing key; `Err` carries the HTTP status of a refused upgrade.
    pub async fn connect_with_headers(addr: SocketAddr, headers: &[(&str, String)]) -> Result<RawClient, u16> {
        let key = Keypair::generate();
        Ok(RawClient {
            socket: Self::open_with(addr, headers).await?,
            key: key.public(),
            signer: Some(key),
        })
    }

    async fn open(
        addr: SocketAddr,
        token: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, u16> {
        Self::open_with(addr, &[("authorization", format!("Bearer {token}"))]).await
    }

    async fn open_with(
        addr: SocketAddr,
        headers: &[(&str, String)],
    ) -> Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>, u16> {
        let mut req = format!("ws://{addr}/v1/sync").into_client_request().unwrap();
        for (name, value) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            req.headers_mut().insert(name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("connect: {e}"),
        }
    }

    /// The signing key this client holds (panics for a client whose scratch store signs).
    pub fn key(&self) -> &Keypair {
        self.signer.as_ref().expect("this client's scratch store holds its key")
    }

    /// The `Hello` of this client: `cursor` and its key.
    pub fn hello(&self, cursor: u64) -> ClientMsg {
        ClientMsg::Hello { cursor, key: self.key }
    }

    /// Says hello with `cursor` and returns the answer (the `Welcome`, or an `Error`).
    pub async fn welcome(&mut self, cursor: u64) -> Option<ServerMsg> {
        self.send(&self.hello(cursor)).await;
        self.recv().await
    }

    /// A push of `changes` to `doc` from nothing (no base, no heads), every change signed with this
    /// client's key.
    pub fn signed(&self, doc: &str, changes: Vec<u8>) -> DocSync {
        DocSync {
            doc: doc.to_string(),
            base: Vec::new(),
            heads: Vec::new(),
            sigs: sign_changes(self.key(), doc, &changes),
            changes,
        }
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_bytes(protocol::encode(msg)).await;
    }

    /// Sends raw bytes as one binary frame.
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// Sends raw bytes as one binary frame, ignoring a send the server cut short by closing.
    pub async fn try_send_bytes(&mut self, bytes: Vec<u8>) {
        let _ = self.socket.send(Message::Binary(bytes.into())).await;
    }

    /// Says hello from cursor 0 and waits for the welcome.
    pub async fn say_hello(&mut self) {
        self.send(&self.hello(0)).await;
        match self.recv().await {
            Some(ServerMsg::Welcome { .. }) => {}
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    /// Pushes whole documents (`(id, bytes)`, no base), every change signed with this client's key,
    /// and returns the server's results, in order.
    pub async fn push(&mut self, docs: Vec<(String, Vec<u8>)>) -> Vec<DocResult> {
        let docs = docs
            .into_iter()
            .map(|(doc, changes)| self.signed(&doc, changes))
            .collect();
        self.send(&ClientMsg::Push { req: 1, docs }).await;
        loop {
            match self.recv().await {
                Some(ServerMsg::Ack { results, .. }) => return results,
                Some(ServerMsg::Changed { .. }) => continue,
                other => panic!("expected an ack, got {other:?}"),
            }
        }
    }

    /// Closes the connection as a phone going away does.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    /// The next message, or `None` once the server closed the connection (10 s at most).
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match self.socket.next().await {
                    // A refusal comes framed in the version the frame it answers claimed (so an
                    // old phone reads it): read it whatever its version byte says.
                    Some(Ok(Message::Binary(b))) => {
                        return Some(match protocol::decode(&b) {
                            Err(protocol::FrameError::Version(_)) => {
                                let mut current = b.to_vec();
                                current[0] = protocol::VERSION;
                                protocol::decode(&current).unwrap()
                            }
                            decoded => decoded.unwrap(),
                        });
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                }
            }
        });
        next.await.expect("the server answers within 10 s")
    }
}

/// A push of everything `store` holds of `id` from nothing, with the signatures the store has for
/// it: its own changes signed with its key, others' as it kept them (what an honest phone sends,
/// minus the phone's own rule checks).
pub fn store_push(store: &mut Store, id: &DocId) -> DocSync {
    let (changes, sigs) = store.export_signed(id, &[]).unwrap().unwrap_or_default();
    DocSync {
        doc: id.to_string(),
        base: Vec::new(),
        heads: Vec::new(),
        changes,
        sigs,
    }
}

/// Signs every change in `bytes` (runs of changes, saved documents, or both) as a change of `doc`
/// with `key`, whoever's actor made it. Bytes that do not decode as Automerge chunks are signed as
/// far as they do: the server refuses them as malformed anyway.
pub fn sign_changes(key: &Keypair, doc: &str, bytes: &[u8]) -> Vec<ChangeSig> {
    change_hashes(bytes)
        .into_iter()
        .map(|hash| key.sign_change(doc, hash))
        .collect()
}

/// The hashes of the changes in Automerge bytes, chunk by chunk (magic, checksum, type, LEB128
/// length), as far as they decode; Automerge's panics on hostile bytes count as the end.
pub fn change_hashes(bytes: &[u8]) -> Vec<[u8; 32]> {
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 10 && rest[..4] == MAGIC {
        let (mut len, mut shift, mut i) = (0u64, 0u32, 9usize);
        loop {
            let Some(&b) = rest.get(i) else { return out };
            len |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return out;
            }
        }
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(i))
            .filter(|&e| e <= rest.len())
        else {
            return out;
        };
        let (chunk, kind) = (&rest[..end], rest[8]);
        let decoded = std::panic::catch_unwind(|| match kind {
            0 => automerge::Automerge::load(chunk)
                .map(|d| d.get_changes(&[]).iter().map(|c| c.hash().0).collect())
                .unwrap_or_default(),
            1 | 2 => automerge::Change::from_bytes(chunk.to_vec())
                .map(|c| vec![c.hash().0])
                .unwrap_or_default(),
            _ => Vec::new(),
        });
        out.extend(decoded.unwrap_or_default());
        rest = &rest[end..];
    }
    out
}

/// A REST client for the head-office API, authenticated as one device (or as nobody, for a test
/// that presents its own credential).
pub struct Api {
    /// The server's base URL.
    base: String,
    /// The bearer token, if this client has one.
    token: Option<String>,
    /// The HTTP client.
    http: reqwest::Client,
}

impl Api {
    /// A client for `server` as the device with `token`.
    pub fn new(server: &TestServer, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..Api::anonymous(server)
        }
    }

    /// A client for `server` that presents no credential of its own.
    pub fn anonymous(server: &TestServer) -> Api {
        Api {
            base: server.url(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    /// A `method` request to `path`, with this client's token if it has one, for the caller to add
    /// what the helpers below do not (other credentials, headers, raw bodies).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// GET `path` with query pairs, authenticated.
    async fn send_get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .query(query)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` with query pairs; returns the status and the body bytes.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Vec<u8>) {
        let resp = self.send_get(path, query).await;
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    /// GET `path` with query pairs; returns the response headers.
    pub async fn get_headers(&self, path: &str, query: &[(&str, &str)]) -> reqwest::header::HeaderMap {
        self.send_get(path, query).await.headers().clone()
    }

    /// GET `path` and parse the JSON body, insisting on 200.
    pub async fn json(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let (status, body) = self.get(path, query).await;
        assert_eq!(status, 200, "GET {path} {query:?}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// POST a JSON body; returns the status and the parsed body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }
}
