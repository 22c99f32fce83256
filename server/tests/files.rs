//! The data directory is private, whoever starts the server and whatever their umask: found with
//! the directory 0755 and the databases, their logs, backups and `demo-tokens.txt` (the org admin's
//! token among them) 0644, readable by every local user. The real binary is started here under
//! `umask 000`, the most permissive there is.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs the server binary with `args` under `umask 000`.
fn permissive(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(support::server_bin())
        .args(args);
    c
}

#[test]
fn a_fresh_data_directory_its_databases_logs_tokens_and_backups_are_private() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite whatever the suite's engine: the test is about the modes of SQLite's files and backups.
    let data = support::DataDir::sqlite(dir.path().join("data"));
    let log = dir.path().join("server.log");
    let addr = support::free_addr();
    let mut server = support::start_with(permissive(&[]), &data, addr, &log, &["--demo"]);
    support::healthy(&mut server, addr, &log, "demo start");

    let mut files = vec![data.join("admin-token"), data.join("demo-tokens.txt")];
    for db in ["server.sqlite3", "documents.sqlite3"] {
        for suffix in ["", "-wal", "-shm"] {
            files.push(data.join(format!("{db}{suffix}")));
        }
    }
    assert_eq!(mode(&data), 0o700, "the data directory");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // Nothing else in the directory is readable by others either.
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is {:o}", p.display(), mode(&p));
    }

    // A backup while serving, by an admin under the same umask.
    let out = dir.path().join("backup");
    let status = permissive(&[
        "admin",
        "--data",
        data.to_str().unwrap(),
        "backup",
        out.to_str().unwrap(),
    ])
    .env("RUST_LOG", "warn")
    .stdout(std::process::Stdio::null())
    .status()
    .unwrap();
    assert!(status.success());
    assert_eq!(mode(&out), 0o700, "the backup directory");
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    support::stop(server);

    // A directory made before this fix, 0755 with 0644 files, is tightened at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in files.iter().filter(|f| f.exists()) {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut server = support::start_with(permissive(&[]), &data, addr, &log, &[]);
    support::healthy(&mut server, addr, &log, "restart");
    assert_eq!(mode(&data), 0o700);
    for f in files.iter().filter(|f| f.exists()) {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    support::stop(server);
}
