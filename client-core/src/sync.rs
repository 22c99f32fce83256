//! Sync: the wire protocol shared with the server, the phone's sans-I/O engine, the status the app
//! shows, and (feature `net`) the tokio shell that runs the engine over a WebSocket.

pub mod backoff;
#[cfg(feature = "net")]
pub mod blobs;
#[cfg(feature = "net")]
pub mod client;
pub mod engine;
pub mod protocol;
pub mod status;
#[cfg(feature = "net")]
pub mod tls;

pub use engine::{Engine, Progress, SyncEvent};
pub use status::{Binding, DocStatus, SyncStatus, UpdateState};
