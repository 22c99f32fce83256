//! `sitesync-server`: the relay and head-office service. Its sync, authentication and reporting
//! arrive with the sync issue; until then the crate only re-exports the document model it will serve.

pub use sitesync_core::ids::DocId;
