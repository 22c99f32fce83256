//! Running the binary against a store file, as a person would from a shell, in English unless a test
//! sets the locale itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The variables that choose the CLI's language; cleared so that a test's expectations do not
/// depend on the machine's locale.
const LOCALE: [&str; 3] = ["LC_ALL", "LC_MESSAGES", "LANG"];

/// The binary with `--store` and `args`, in the given environment on top of a locale-free one.
pub fn sitesync_in(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sitesync"));
    for k in LOCALE {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied())
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

pub fn sitesync(store: &Path, args: &[&str]) -> Output {
    sitesync_in(store, args, &[])
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

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The small fixture company (one site, 53 workers, three days of logs).
pub fn small_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/small")
}

/// A fresh store in `dir` with the small fixture company and its logs imported.
pub fn small_store(dir: &Path) -> PathBuf {
    let store = dir.join("phone.sqlite3");
    ok(&store, &["import", small_fixture().to_str().unwrap()]);
    store
}

/// `labor add` of `worker` on `date` at work item 4.1 of `site` (the small company's plumbing).
pub fn add_line(store: &Path, site: &str, date: &str, worker: &str, work_days: &str) -> Output {
    sitesync(
        store,
        &[
            "labor",
            "add",
            "--site",
            site,
            "--date",
            date,
            "--worker",
            worker,
            "--work-item",
            "site-hz-01/wi-4.1",
            "--work-days",
            work_days,
        ],
    )
}
