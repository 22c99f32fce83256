//! Store tests against real SQLite files: merging replicas, review and amendments, validation,
//! crash safety under SIGKILL, and property tests of convergence.

mod common;
mod crash;
mod due;
mod encryption;
mod merge;
mod okr;
mod pay;
mod projection;
mod props;
mod queries;
mod regression;
mod review;
mod signoff;
mod storage;
mod validation;
mod workers;
