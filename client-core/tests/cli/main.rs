//! The `sitesync` command line, run as a user would: the real binary against real SQLite stores, the
//! exact invocations the product is checked by. Shared helpers are in `common`; each module holds the
//! tests of one command group.
#![cfg(feature = "cli")]

mod common;
mod conflicts;
mod daily_log;
mod entry;
mod language;
mod logging;
mod names;
mod pay;
mod peer;
mod report;
mod signoff;
mod store;
mod watch;
