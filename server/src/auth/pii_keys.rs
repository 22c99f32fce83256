//! Each org's personal-data key (ID-card and bank-card numbers, PIPL; see `sitesync_core::pii`): an
//! X25519 key pair whose public half phones seal numbers to, and an identity key phones derive
//! worker ids with. Made on first use. The secret halves are kept in `meta`
//! (`org_pii_key:<org>`) on both engines by default, or, with `--pii-key-file`, in a file of their
//! own outside the data directory, so that a copy of the data directory or of the database (a
//! backup, a dump) holds only sealed numbers it cannot open.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sitesync_core::pii::{OrgPiiKey, OrgPiiSecret};

use super::AuthDb;
use crate::error::{Error, Result};

/// Serializes the key file's read-then-append within this process (one key per org).
static KEY_FILE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl AuthDb {
    /// Keeps org personal-data keys in `path` (one line per org: `<org> <secret>`, mode 0600)
    /// instead of `meta`. Set once, before the first key is asked for.
    pub fn use_pii_key_file(&self, path: PathBuf) -> Result<()> {
        self.pii_key_file
            .set(path)
            .map_err(|_| Error::Internal("the personal-data key file is set once".into()))
    }

    /// The org's personal-data secret, made on first use. Two nodes making it at once agree (the
    /// first insert wins; with a key file, nodes must share the file).
    pub fn org_pii_secret(&self, org_id: &str) -> Result<OrgPiiSecret> {
        if let Some(path) = self.pii_key_file.get() {
            return file_secret(path, org_id);
        }
        let name = format!("org_pii_key:{org_id}");
        let read = |db: &AuthDb| -> Result<Option<OrgPiiSecret>> {
            Ok(db
                .text("SELECT value FROM meta WHERE key = ?1", &[name.as_str().into()])?
                .and_then(|s| OrgPiiSecret::from_hex(&s).ok()))
        };
        if let Some(k) = read(self)? {
            return Ok(k);
        }
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            &[name.as_str().into(), fresh()?.to_hex().into()],
        )?;
        read(self)?.ok_or_else(|| Error::Internal("the org's personal-data key was not stored".into()))
    }

    /// What the org's phones are given: the public half and the identity key.
    pub fn org_pii_key(&self, org_id: &str) -> Result<OrgPiiKey> {
        Ok(self.org_pii_secret(org_id)?.public(org_id))
    }

    /// The personal-data secret of the org `site` belongs to.
    pub fn site_pii_secret(&self, site: &str) -> Result<OrgPiiSecret> {
        let org = self
            .site_org(site)?
            .ok_or_else(|| Error::NotFound(format!("site {site}")))?;
        self.org_pii_secret(&org)
    }
}

fn fresh() -> Result<OrgPiiSecret> {
    OrgPiiSecret::generate().map_err(|e| Error::Internal(format!("random: {e}")))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Internal(format!("{}: {e}", path.display()))
}

/// The org's secret from the key file, appended when the org has none yet.
fn file_secret(path: &Path, org_id: &str) -> Result<OrgPiiSecret> {
    let _held = KEY_FILE_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(path)(e)),
    };
    for line in text.lines() {
        if let Some((org, secret)) = line.split_once(' ')
            && org == org_id
        {
            return OrgPiiSecret::from_hex(secret)
                .map_err(|e| Error::Internal(format!("{}: org {org_id}: {e}", path.display())));
        }
    }
    let secret = fresh()?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    crate::files::set_mode(path, crate::files::FILE_MODE)?;
    writeln!(f, "{org_id} {}", secret.to_hex()).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_org_kept_in_meta_or_in_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::open(dir.path()).unwrap();
        let a = db.org_pii_key("o").unwrap();
        assert_eq!(db.org_pii_key("o").unwrap(), a, "kept");
        assert_ne!(db.org_pii_key("p").unwrap(), a);

        let keys = tempfile::tempdir().unwrap();
        let file = keys.path().join("pii.keys");
        let dir2 = tempfile::tempdir().unwrap();
        let db2 = AuthDb::open(dir2.path()).unwrap();
        db2.use_pii_key_file(file.clone()).unwrap();
        let b = db2.org_pii_key("o").unwrap();
        assert_eq!(db2.org_pii_key("o").unwrap(), b);
        assert_ne!(db2.org_pii_key("p").unwrap(), b);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        // Nothing of it in the data directory's database.
        let secret = db2.org_pii_secret("o").unwrap().to_hex();
        for entry in std::fs::read_dir(dir2.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
}
