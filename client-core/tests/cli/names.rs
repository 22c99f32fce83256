//! Sites and workers as people name them: the site code the CLI prints, a worker's name; a miss
//! names the nearest match instead of just refusing.

use std::path::Path;

use crate::common::{add_line, json, ok, sitesync, small_fixture, small_store, stderr};

#[test]
fn a_site_code_and_a_worker_name_are_taken_and_the_chosen_id_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    // The code `sites` prints, in any case.
    let sites = ok(&store, &["sites"]);
    assert!(sites.contains("HZ-01"), "{sites}");
    for code in ["HZ-01", "hz-01"] {
        let out = sitesync(&store, &["day", "--site", code, "--date", "2026-09-03", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let day: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(day["site"], "site-hz-01");
        let said = format!("site {code}: using site-hz-01 (HZ-01 ");
        assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    }
    // An id is taken silently: nothing to explain.
    let out = sitesync(&store, &["day", "--site", "site-hz-01", "--date", "2026-09-03"]);
    assert!(out.status.success() && stderr(&out).is_empty(), "{}", stderr(&out));

    let out = add_line(&store, "HZ-01", "2026-09-05", "高平", "1.0");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("worker 高平: using w-0001 (高平, "),
        "{}",
        stderr(&out)
    );
    let day = json(
        &store,
        &["day", "--site", "site-hz-01", "--date", "2026-09-05", "--json"],
    );
    assert_eq!(day["labor"][0]["worker"], "w-0001");

    let out = sitesync(&store, &["month", "--worker", "高平", "--month", "2026-09", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let month: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(month["worker"], "w-0001");
    assert_eq!(month["lines"], 4);
}

#[test]
fn a_miss_suggests_the_nearest_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let before = ok(
        &store,
        &["day", "--site", "site-hz-01", "--date", "2026-09-03", "--json"],
    );
    let add = |site: &str, worker: &str| add_line(&store, site, "2026-09-03", worker, "1.0");
    for (site, worker, says) in [
        ("HZ-1", "w-0001", "unknown site \"HZ-1\""),
        ("HZ-1", "w-0001", "did you mean site-hz-01 (HZ-01 "),
        (
            "site-hz-01",
            "高萍",
            "worker \"高萍\" is not on the roster of site-hz-01",
        ),
        ("site-hz-01", "高萍", "did you mean w-0001 (高平, "),
        ("site-hz-01", "w-0010", "w-0010"),
    ] {
        let out = add(site, worker);
        if worker == "w-0010" {
            // A real id not yet logged that day: the control, it must pass.
            assert!(out.status.success(), "{}", stderr(&out));
            ok(&store, &["labor", "rm", String::from_utf8_lossy(&out.stdout).trim()]);
            continue;
        }
        assert_eq!(out.status.code(), Some(2), "{site} {worker}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{site} {worker}: {}", stderr(&out));
    }
    // Nothing near: no suggestion, still a clear refusal.
    let out = add("site-hz-01", "Zhang Wei");
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("did you mean"), "{}", stderr(&out));
    let after = ok(
        &store,
        &["day", "--site", "site-hz-01", "--date", "2026-09-03", "--json"],
    );
    let lines = |d: &str| serde_json::from_str::<serde_json::Value>(d).unwrap()["labor"].clone();
    assert_eq!(lines(&after), lines(&before));
}

#[test]
fn a_name_two_workers_share_is_refused_with_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    // The small company with w-0002 renamed to w-0001's name.
    let company = std::fs::read_to_string(small_fixture().join("company.json")).unwrap();
    let mut c: serde_json::Value = serde_json::from_str(&company).unwrap();
    let workers = c["sites"][0]["workers"].as_array_mut().unwrap();
    let name = workers[0]["name"].clone();
    workers[1]["name"] = name.clone();
    let fixture = dir.path().join("twins");
    std::fs::create_dir(&fixture).unwrap();
    std::fs::write(fixture.join("company.json"), c.to_string()).unwrap();
    let store = dir.path().join("s.sqlite3");
    ok(&store, &["import", fixture.to_str().unwrap()]);

    let out = sitesync(
        &store,
        &["month", "--worker", name.as_str().unwrap(), "--month", "2026-09"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("could be any of") && err.contains("w-0001") && err.contains("w-0002"),
        "{err}"
    );
}

#[test]
fn a_mistyped_store_is_refused_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    small_store(dir.path());
    let typo = dir.path().join("phnoe.sqlite3");
    for args in [
        &["day", "--site", "HZ-01", "--date", "2026-09-03"][..],
        &["sites"],
        &["status"],
        &["okr", "show", "--org", "org-x", "--cycle", "2026-Q4"],
    ] {
        let out = sitesync(&typo, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("no store at"), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("phnoe.sqlite3"), "{}", stderr(&out));
        assert!(!Path::new(&typo).exists(), "{args:?} created the store");
    }
    // The commands that make stores still do.
    ok(&typo, &["import", small_fixture().to_str().unwrap()]);
    assert!(typo.exists());
}
