//! The store's own commands: binding it to a server (`init`).

use crate::common::{json, ok, sitesync};

#[test]
fn init_takes_a_company_ca_and_refuses_clear_text_to_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("phone.sqlite3");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap();
    let ca_file = dir.path().join("company-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let ca_path = ca_file.to_str().unwrap();

    let out = ok(
        &store,
        &[
            "init",
            "--server",
            "https://hq.example.com:8443",
            "--token",
            "sst_x_y",
            "--ca-cert",
            ca_path,
        ],
    );
    assert!(out.contains("trusting only the CA in"), "{out}");
    let status = json(&store, &["status", "--json"]);
    assert_eq!(status["server"], "https://hq.example.com:8443");

    // Plain http:// to another machine would send the token in clear: refused, binding unchanged.
    let out = sitesync(
        &store,
        &["init", "--server", "http://hq.example.com", "--token", "sst_x_y"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clear text"), "{err}");
    assert_eq!(
        json(&store, &["status", "--json"])["server"],
        "https://hq.example.com:8443"
    );

    // A CA file that holds no certificate is refused.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let out = sitesync(
        &store,
        &[
            "init",
            "--server",
            "https://hq.example.com",
            "--token",
            "sst_x_y",
            "--ca-cert",
            junk.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca_cert"), "{err}");

    // Loopback stays plain for development.
    ok(
        &store,
        &["init", "--server", "http://127.0.0.1:8080", "--token", "sst_x_y"],
    );
}

#[test]
fn init_says_the_next_command_with_the_store_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("site office.sqlite3");
    let out = ok(
        &store,
        &["init", "--server", "http://127.0.0.1:8080", "--token", "sst_x_y"],
    );
    // Quoted for the shell: the path has a space.
    let next = format!("run `sitesync --store '{}' sync`", store.display());
    assert!(out.contains(&next), "{out}");

    let plain = dir.path().join("a.sqlite3");
    let out = ok(
        &plain,
        &["init", "--server", "http://127.0.0.1:8080", "--token", "sst_x_y"],
    );
    assert!(
        out.contains(&format!("run `sitesync --store {} sync`", plain.display())),
        "{out}"
    );
}

/// `--store-key-file` (or `SITESYNC_STORE_KEY`) creates and opens an encrypted store; without the
/// key, or with another, the CLI says so and exits 2, never "file is not a database".
#[test]
fn an_encrypted_store_opens_only_with_its_key() {
    use crate::common::{sitesync_in, small_fixture, stderr};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("phone.sqlite3");
    let key_file = dir.path().join("store.key");
    std::fs::write(&key_file, format!("{}\n", "5a".repeat(32))).unwrap();
    let key_path = key_file.to_str().unwrap();
    let fixture = small_fixture();
    let out = sitesync_in(
        &store,
        &["--store-key-file", key_path, "import", fixture.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let add = [
        "worker",
        "add",
        "--site",
        "site-hz-01",
        "--name",
        "李四",
        "--phone",
        "13900001111",
        "--trade",
        "rebar",
        "--crew",
        "site-hz-01/crew-1",
        "--rate",
        "350",
    ];
    // The same key from the environment.
    let out = sitesync_in(&store, &add, &[("SITESYNC_STORE_KEY", &"5a".repeat(32))]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).trim().starts_with("w-"));
    // An ID card before the store ever synced: it has no org key to seal the number with, so it
    // is refused with what to do (the worker was added without it above).
    let with_card = [&add[..], &["--id-card", "33010619900101123X"]].concat();
    let out = sitesync_in(&store, &with_card, &[("SITESYNC_STORE_KEY", &"5a".repeat(32))]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("sync"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("33010619900101123X"), "{}", stderr(&out));

    let out = sitesync(&store, &["sites"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("encrypted"), "{}", stderr(&out));
    let out = sitesync_in(&store, &["sites"], &[("SITESYNC_STORE_KEY", &"5b".repeat(32))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not open"), "{}", stderr(&out));
    let out = sitesync_in(&store, &["sites"], &[("SITESYNC_STORE_KEY", "short")]);
    assert_eq!(out.status.code(), Some(2));
}
