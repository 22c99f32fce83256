//! Any bytes as the changes of a pushed site-day document, merged into a store that holds the
//! fixture day.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::{Mutex, Once};

thread_local! {
    /// One store per process, rebuilt only after an input changed it (see `DocTarget`).
    static TARGET: RefCell<sitesync_fuzz::DocTarget> = RefCell::new(sitesync_fuzz::DocTarget::new());
}

/// libfuzzer-sys aborts at every panic, even one the code under test catches: `doc::apply_bytes`
/// catches Automerge's panics on malformed input and refuses the bytes, which is the behaviour
/// under test. This hook reports each panic location once and lets it unwind; a panic nobody
/// catches still reaches libfuzzer-sys, which aborts and saves the input as a crash.
fn contain_caught_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let seen = Mutex::new(BTreeSet::new());
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(ToString::to_string).unwrap_or_default();
            if seen.lock().unwrap_or_else(|e| e.into_inner()).insert(at) {
                eprintln!("{info}\n(first panic at this location; it aborts the run unless it is caught)");
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    contain_caught_panics();
    TARGET.with(|t| {
        t.borrow_mut().check_both(data);
    })
});
