//! Helpers for sitesync's cross-crate tests: real servers and clients on loopback.

pub mod browser;
pub mod crafted;
pub mod harness;
#[path = "../../server/tests/support/pg.rs"]
pub mod pg;
pub mod protocol_prev;
pub mod proxy;
pub mod s3;
