//! Wake-ups from other nodes: one direct PostgreSQL connection that LISTENs for commits and
//! revocations.
//!
//! A notification only wakes: the change cursor in the database says what changed, and every node
//! also reads it once a second, so a lost notification (a dropped connection, a restart of
//! PostgreSQL) costs at most that second, never a change (the Hocuspocus #800 lesson: its Redis
//! pub/sub lost updates between instances). Revocations have no cursor to poll: each new session
//! reads back from the devices table those it may have missed, every revocation since the previous
//! session began listening (2026-11-30: a revocation announced while a node's session was down left
//! the device connected to that node, receiving every change, until it next sent something). The
//! connection is not pooled because `LISTEN` belongs to a session (one reason PgBouncer must run in
//! session mode; see the README).

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::{Error, Result};
use crate::state::AppState;

/// The channel commits are announced on (payload: the change cursor).
pub const CHANGES: &str = "sitesync_changes";
/// The channel revocations are announced on (payload: the device id).
pub const REVOKED: &str = "sitesync_revoked";

/// How much earlier than a session began revocations are read back: more than the clocks of the
/// machines that revoke (other nodes, admin commands) may disagree by. Reading back a few more
/// revocations than were missed costs nothing: their connections are long closed.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Listens until the task is aborted, reconnecting after a pause when the connection fails.
pub async fn listen(state: AppState, url: String) {
    // Connections this node accepts before its first session listens may miss revocations too.
    let mut unheard_since = chrono::Utc::now();
    loop {
        if let Err(e) = listen_once(&state, &url, &mut unheard_since).await {
            tracing::warn!(error = %e, "listening for other nodes failed; polling meanwhile");
        }
        // The poll catches up whatever was announced while the connection was down.
        let _ = state.notify_changes().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection's life: `LISTEN`, read back the revocations announced since `unheard_since`
/// (then moved to when this session began listening), then hand every notification on until it
/// ends.
async fn listen_once(state: &AppState, url: &str, unheard_since: &mut chrono::DateTime<chrono::Utc>) -> Result<()> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.map_err(failed)?;
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
    let listening = chrono::Utc::now();
    client
        .batch_execute(&format!(
            "SET application_name = 'sitesync-listen'; LISTEN {CHANGES}; LISTEN {REVOKED}"
        ))
        .await
        .map_err(failed)?;
    // Anything committed before LISTEN took effect is read now.
    let since = (*unheard_since - CLOCK_SLACK).to_rfc3339();
    for device in state.auth(move |a| a.revoked_since(&since)).await? {
        state.revoked(&device);
    }
    *unheard_since = listening;
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
        Ok(result) => result.map_err(failed),
        Err(_) => Ok(()),
    }
}

fn failed(e: tokio_postgres::Error) -> Error {
    Error::Internal(format!("listening: {e}"))
}
