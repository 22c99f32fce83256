//! Sync: the wire protocol shared with the server, the phone's sans-I/O engine, and (feature `net`)
//! the tokio shell that runs it over a WebSocket.

pub mod engine;
pub mod protocol;

pub use engine::{Engine, Progress};
