//! Shared server state: the credential database, the document store, and change notification.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sitesync_core::Store;
use tokio::sync::watch;

use crate::auth::AuthDb;
use crate::error::{Error, Result};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Tenancy and credentials; a mutex because SQLite connections are used by one thread at a time.
    auth: Arc<Mutex<AuthDb>>,
    /// The documents, in the same store the phones use; one writer.
    docs: Arc<Mutex<Store>>,
    /// The store's change cursor, watched by every live connection to push updates to its device.
    changes: Arc<watch::Sender<u64>>,
    /// Flips to true when the server shuts down, so live connections close.
    shutdown: Arc<watch::Sender<bool>>,
    /// Where the data lives.
    data_dir: PathBuf,
    /// How sync connections are kept alive and when silent ones are closed.
    timing: SessionTiming,
}

/// Keep-alive of sync connections: a ping every `ping_every`; a connection from which nothing (not
/// even a pong) arrived for `idle_after` is closed and its resources freed, as is one whose peer
/// stops reading for that long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTiming {
    /// How often the server pings.
    pub ping_every: std::time::Duration,
    /// How long a connection may stay silent (or refuse to read) before it is closed.
    pub idle_after: std::time::Duration,
}

impl Default for SessionTiming {
    fn default() -> Self {
        SessionTiming {
            ping_every: std::time::Duration::from_secs(30),
            idle_after: std::time::Duration::from_secs(90),
        }
    }
}

/// Locks a mutex, recovering it if a panicking thread poisoned it (the guarded stores keep their
/// on-disk state consistent on their own).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    /// Opens the data directory (creating it), its credential database and document store.
    pub fn open(data_dir: &Path) -> Result<AppState> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::Internal(format!("{}: {e}", data_dir.display())))?;
        let auth = AuthDb::open(data_dir)?;
        let mut docs = Store::open(data_dir.join("documents.sqlite3"))?;
        if docs.user() != "server" {
            docs.set_user("server")?;
        }
        let cursor = docs.change_cursor()?;
        Ok(AppState {
            auth: Arc::new(Mutex::new(auth)),
            docs: Arc::new(Mutex::new(docs)),
            changes: Arc::new(watch::channel(cursor).0),
            shutdown: Arc::new(watch::channel(false).0),
            data_dir: data_dir.to_path_buf(),
            timing: SessionTiming::default(),
        })
    }

    /// The same state with other keep-alive timing (tests use short ones).
    pub fn with_timing(mut self, timing: SessionTiming) -> AppState {
        self.timing = timing;
        self
    }

    /// The keep-alive timing of sync connections.
    pub fn timing(&self) -> SessionTiming {
        self.timing
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Runs `f` with the credential database on a blocking thread.
    pub async fn auth<T: Send + 'static>(&self, f: impl FnOnce(&AuthDb) -> Result<T> + Send + 'static) -> Result<T> {
        let auth = self.auth.clone();
        tokio::task::spawn_blocking(move || f(&lock(&auth)))
            .await
            .map_err(|e| Error::Internal(format!("auth task: {e}")))?
    }

    /// Runs `f` with the credential database and the document store (locked in that order, always)
    /// on a blocking thread.
    pub async fn both<T: Send + 'static>(
        &self,
        f: impl FnOnce(&AuthDb, &mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (auth, docs) = (self.auth.clone(), self.docs.clone());
        tokio::task::spawn_blocking(move || {
            let auth = lock(&auth);
            let mut docs = lock(&docs);
            f(&auth, &mut docs)
        })
        .await
        .map_err(|e| Error::Internal(format!("store task: {e}")))?
    }

    /// Re-reads the change cursor and wakes live connections if documents changed.
    pub async fn notify_changes(&self) -> Result<()> {
        let cursor = self.both(|_, docs| Ok(docs.change_cursor()?)).await?;
        self.changes.send_if_modified(|c| {
            let newer = cursor > *c;
            if newer {
                *c = cursor;
            }
            newer
        });
        Ok(())
    }

    /// A receiver that wakes when documents change.
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that wakes when the server shuts down.
    pub fn watch_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells live connections to close.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
