//! `sitesync-mobile`: the uniffi layer the Android and iOS apps call. Its API arrives with the
//! mobile-bindings issue; it builds on the same `sitesync-core` store the CLI uses.

pub use sitesync_core::Store;
