//! Wake-ups from other nodes: one direct PostgreSQL connection that LISTENs for commits and
//! revocations.
//!
//! A notification only wakes: the change cursor in the database says what changed, and every node
//! also reads it once a second, so a lost notification (a dropped connection, a restart of
//! PostgreSQL) costs at most that second, never a change (the Hocuspocus #800 lesson: its Redis
//! pub/sub lost updates between instances). The connection is not pooled because `LISTEN` belongs
//! to a session: behind PgBouncer in transaction mode, point `--database` at PostgreSQL itself.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::state::AppState;

/// The channel commits are announced on (payload: the change cursor).
pub const CHANGES: &str = "sitesync_changes";
/// The channel revocations are announced on (payload: the device id).
pub const REVOKED: &str = "sitesync_revoked";

/// Listens until the task is aborted, reconnecting after a pause when the connection fails.
pub async fn listen(state: AppState, url: String) {
    loop {
        if let Err(e) = listen_once(&state, &url).await {
            tracing::warn!(error = %e, "listening for other nodes failed; polling meanwhile");
        }
        // The poll catches up whatever was announced while the connection was down.
        let _ = state.notify_changes().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection's life: `LISTEN`, then hand every notification on until it ends.
async fn listen_once(state: &AppState, url: &str) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the client's statements to run; notifications come out of
    // the same polling.
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send((n.channel().to_string(), n.payload().to_string())).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!(
            "SET application_name = 'sitesync-listen'; LISTEN {CHANGES}; LISTEN {REVOKED}"
        ))
        .await?;
    // Anything committed before LISTEN took effect is read now.
    let _ = state.notify_changes().await;
    while let Some((channel, payload)) = rx.recv().await {
        if channel == REVOKED {
            state.revoked(&payload);
        } else {
            // Bursts coalesce: one read of the cursor covers every commit before it.
            while rx.try_recv().is_ok_and(|(c, p)| {
                if c == REVOKED {
                    state.revoked(&p);
                }
                true
            }) {}
            let _ = state.notify_changes().await;
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
