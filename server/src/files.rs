//! The server's files are its own: the data directory is 0700, and the databases (with their
//! write-ahead logs), backups and token files are 0600, whatever the umask of whoever started it.
//!
//! Found 2026-11-30: a data directory made under the usual umask 022 was 0755 with 0644 databases,
//! so every local user could read wages and `demo-tokens.txt` (the org admin's token among them).
//! The binary sets `umask(077)` at start (`restrict_umask`), and the library sets the modes itself
//! on what it creates or opens, so an embedding program gets private files too. SQLite creates a
//! database's `-wal` and `-shm` files with the database file's own mode, so a database created
//! 0600 keeps its logs private.

use std::path::Path;

use crate::error::{Error, Result};

/// The mode of the data directory and of backup directories.
pub const DIR_MODE: u32 = 0o700;
/// The mode of databases, their logs, backups and token files.
pub const FILE_MODE: u32 = 0o600;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{}: {e}", path.display()))
}

/// The token files a data directory may hold (the first start's admin token, the demo's tokens).
pub const SECRET_FILES: &[&str] = &["admin-token", "demo-tokens.txt"];

/// Tightens the modes of what a data directory made before these rules holds: the directory, the
/// token files. (Databases are tightened as they are opened.)
pub fn tighten_data_dir(dir: &Path) -> Result<()> {
    private_dir(dir)?;
    for name in SECRET_FILES {
        let path = dir.join(name);
        if path.exists() {
            set_mode(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Makes new files of this process private: `umask(077)`. Returns the previous mask.
pub fn restrict_umask() -> u32 {
    #[cfg(unix)]
    {
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        old.as_raw_mode() as u32
    }
    #[cfg(not(unix))]
    0
}

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    set_mode(dir, DIR_MODE)
}

/// Makes a database private before SQLite opens it: creates it empty with mode 0600 if it does not
/// exist (so the logs SQLite makes beside it get 0600 too), or tightens the modes of the file and
/// of its `-wal` and `-shm` files if they exist.
pub fn private_database(path: &Path) -> Result<()> {
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
        options.open(path).map_err(io(path))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if file.exists() {
            set_mode(file, FILE_MODE)?;
        }
    }
    Ok(())
}

/// Writes a secret (a token file) readable by the owner only, replacing the file.
pub fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let mut f = options.open(path).map_err(io(path))?;
    // An existing file keeps its mode through `open`: tighten it.
    set_mode(path, FILE_MODE)?;
    f.write_all(secret.as_bytes()).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Sets the permission bits of `path` (nothing to do off Unix).
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn existing_files_are_tightened_and_new_ones_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        set_mode(&data, 0o755).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);

        let db = data.join("x.sqlite3");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(data.join("x.sqlite3-wal"), b"").unwrap();
        set_mode(&db, 0o644).unwrap();
        set_mode(&data.join("x.sqlite3-wal"), 0o644).unwrap();
        private_database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&data.join("x.sqlite3-wal")), 0o600);

        let fresh = data.join("fresh.sqlite3");
        private_database(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);

        let token = data.join("token");
        std::fs::write(&token, b"old").unwrap();
        set_mode(&token, 0o644).unwrap();
        write_secret(&token, "new\n").unwrap();
        assert_eq!(mode(&token), 0o600);
        assert_eq!(std::fs::read_to_string(&token).unwrap(), "new\n");
    }
}
