//! The SQLite document store's checkpoints, on a thread of their own. SQLite checkpoints its
//! write-ahead log inside whichever commit pushes the log past 1,000 pages: that commit then copies
//! the log into the database and syncs it, and every push in the group commit waits tens of
//! milliseconds behind it (the realistic steady state's p99). Here the writer never checkpoints; a
//! passive checkpoint on another connection runs every [`EVERY`], beside the writer (WAL lets both
//! run at once), and the writer only ever waits for its own log's sync.

use std::path::Path;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;
use sitesync_core::Store;

use crate::error::{Error, Result};

/// How often the log is copied into the database: at a few hundred pushes a second the log stays
/// within a few MiB.
const EVERY: Duration = Duration::from_millis(500);

/// Stops `store` (the push writer's) from checkpointing in its commits and starts the thread that
/// does it instead, on its own connection to `path`. The thread ends once `alive` is gone (the
/// server's state dropped).
pub(crate) fn hand_off(store: &Store, path: &Path, alive: Weak<Mutex<Store>>) -> Result<()> {
    store.stop_auto_checkpoint()?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(EVERY);
                // Passive: copies what no reader still needs and never blocks the writer; what it
                // leaves is copied next time.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "write-ahead log checkpoint failed; retrying");
                }
            }
        })
        .map_err(|e| Error::Internal(format!("checkpoint thread: {e}")))?;
    Ok(())
}
