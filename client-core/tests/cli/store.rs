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
