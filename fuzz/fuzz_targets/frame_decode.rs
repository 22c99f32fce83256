//! Any bytes as a sync frame, decoded as what a phone sends and as what the server sends.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sitesync_fuzz::check_frame(data));
