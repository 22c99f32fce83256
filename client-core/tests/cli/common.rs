//! Running the binary against a store file, as a person would from a shell.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub fn sitesync(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sitesync"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

pub fn ok(store: &Path, args: &[&str]) -> String {
    let out = sitesync(store, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json(store: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(store, args)).unwrap()
}

/// A fresh store in `dir` with the small fixture company and its logs imported.
pub fn small_store(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("phone.sqlite3");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small");
    ok(&store, &["import", fixtures.to_str().unwrap()]);
    store
}
