//! Sign-off as the issue names the commands: `sign` with an image or a tap of consent, `dispute` and
//! `answer-dispute`, `confirm-crew`, the month forms and `signoffs`, and `day --json`'s `.signoffs`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{json, ok, sitesync, small_store, stderr};

const SITE: &str = "site-hz-01";
const DATE: &str = "2026-09-01";

/// The `.signoffs.workers` entry of `worker` in `day --json`.
fn worker_state(store: &std::path::Path, worker: &str) -> Value {
    let day = json(store, &["day", "--site", SITE, "--date", DATE, "--json"]);
    day["signoffs"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["worker"] == worker)
        .cloned()
        .unwrap_or_else(|| panic!("{worker} not in {day}"))
}

#[test]
fn a_signature_with_an_image_is_kept_through_an_edit_that_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    assert_eq!(worker_state(&store, "w-0001")["state"], "unsigned");
    let png = dir.path().join("sig.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nstrokes").unwrap();
    let out = ok(
        &store,
        &[
            "sign",
            "--site",
            SITE,
            "--date",
            DATE,
            "--worker",
            "w-0001",
            "--image",
            png.to_str().unwrap(),
        ],
    );
    assert!(out.contains("w-0001") && out.contains("signed"), "{out}");
    let state = worker_state(&store, "w-0001");
    assert_eq!(state["state"], "signed");
    let sha = hex::encode(Sha256::digest(std::fs::read(&png).unwrap()));
    assert_eq!(state["signature"]["image"], sha.as_str());
    // A tap of consent: no image.
    ok(&store, &["sign", "--site", SITE, "--date", DATE, "--worker", "w-0003"]);
    assert_eq!(worker_state(&store, "w-0003")["signature"]["image"], Value::Null);

    // An edit of the signed line keeps the signature and says what changed.
    let line = state["signature"]["lines"][0].as_str().unwrap().to_string();
    ok(&store, &["labor", "edit", &line, "--work-days", "0.5"]);
    let state = worker_state(&store, "w-0001");
    assert_eq!(state["state"], "changed_since_signed", "{state}");
    assert_eq!(state["signature"]["image"], sha.as_str(), "the signature is kept");
    let change = state["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "work_days_centi")
        .cloned()
        .unwrap();
    assert_eq!(
        (change["approved"].as_str(), change["now"].as_str()),
        (Some("100"), Some("50"))
    );
    assert_eq!(
        worker_state(&store, "w-0003")["state"],
        "signed",
        "w-0003's line did not change"
    );
}

#[test]
fn a_disputed_day_is_refused_approval_until_the_dispute_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let base = ["--site", SITE, "--date", DATE, "--worker", "w-0001"];
    let blank = sitesync(&store, &[&["dispute"][..], &base, &["--reason", " "]].concat());
    assert_eq!(blank.status.code(), Some(2), "{}", stderr(&blank));
    let written = json(
        &store,
        &[&["dispute"][..], &base, &["--reason", "我干了一整天", "--json"]].concat(),
    );
    let id = written[0]["id"].as_str().unwrap().to_string();
    assert_eq!(worker_state(&store, "w-0001")["state"], "disputed");
    ok(&store, &["submit", "--site", SITE, "--date", DATE]);
    let refused = sitesync(&store, &["approve", "--site", SITE, "--date", DATE]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains(&id), "{}", stderr(&refused));
    let day = json(&store, &["day", "--site", SITE, "--date", DATE, "--json"]);
    assert_eq!(day["status"], "submitted", "nothing written");

    let wrong = sitesync(
        &store,
        &[
            "answer-dispute",
            "--site",
            SITE,
            "--date",
            DATE,
            "--dispute",
            "nope",
            "--reason",
            "x",
        ],
    );
    assert_eq!(wrong.status.code(), Some(2));
    ok(
        &store,
        &[
            "answer-dispute",
            "--site",
            SITE,
            "--date",
            DATE,
            "--dispute",
            &id,
            "--reason",
            "已改为 1.0",
        ],
    );
    assert_eq!(worker_state(&store, "w-0001")["state"], "unsigned");
    ok(&store, &["approve", "--site", SITE, "--date", DATE]);
}

#[test]
fn the_month_sheet_names_who_still_has_to_sign_and_a_crew_confirms_its_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let sheet = |store: &std::path::Path| {
        json(store, &["signoffs", "--site", SITE, "--month", "2026-09", "--json"])["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["worker"].as_str().unwrap().to_string(),
                    w["state"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = sheet(&store);
    assert!(before.iter().all(|(_, s)| s == "unsigned"), "{before:?}");
    let written = json(
        &store,
        &[
            "sign", "--site", SITE, "--month", "2026-09", "--worker", "w-0001", "--json",
        ],
    );
    let days = written.as_array().unwrap();
    assert!(days.len() > 1, "one record on each day with lines: {written}");
    assert!(days.iter().all(|e| e["month"] == "2026-09"));
    let after = sheet(&store);
    for (w, s) in &after {
        assert_eq!(s, if w == "w-0001" { "signed" } else { "unsigned" }, "{w}");
    }
    let text = ok(&store, &["signoffs", "--site", SITE, "--month", "2026-09"]);
    assert!(text.contains("w-0001 2026-09: signed"), "{text}");
    // Nothing to sign in a month without lines: bad input, nothing written.
    let none = sitesync(
        &store,
        &["sign", "--site", SITE, "--month", "2030-01", "--worker", "w-0001"],
    );
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));

    let crew = "site-hz-01/crew-1";
    let out = ok(
        &store,
        &["confirm-crew", "--site", SITE, "--date", DATE, "--crew", crew],
    );
    assert!(out.contains(crew), "{out}");
    let day = json(&store, &["day", "--site", SITE, "--date", DATE, "--json"]);
    let confirmed = day["signoffs"]["crews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["crew"] == crew)
        .cloned()
        .unwrap();
    assert_eq!(confirmed["confirmation"]["action"], "crew_confirmed");
    let unknown = sitesync(
        &store,
        &["confirm-crew", "--site", SITE, "--date", DATE, "--crew", "no-such-crew"],
    );
    assert_eq!(unknown.status.code(), Some(2));
}

/// The advances of `DATE` as `advances --json` lists them, by id.
fn advance_state(store: &std::path::Path, id: &str) -> Value {
    let list = json(store, &["advances", "--site", SITE, "--date", DATE, "--json"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["advance"]["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

#[test]
fn a_worker_confirms_his_advance_and_an_edit_shows_what_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let day = ["--site", SITE, "--date", DATE];
    let adv = json(
        &store,
        &[
            &["advance"][..],
            &day,
            &["--worker", "w-0001", "--amount", "300", "--json"],
        ]
        .concat(),
    );
    let id = adv["id"].as_str().unwrap().to_string();
    assert_eq!(advance_state(&store, &id)["state"], "unsigned");
    // Another worker cannot confirm it; a month form has no advance; nothing is written.
    let wrong = sitesync(
        &store,
        &[&["sign"][..], &day, &["--worker", "w-0002", "--advance", &id]].concat(),
    );
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
    let month = sitesync(
        &store,
        &[
            "sign",
            "--site",
            SITE,
            "--month",
            "2026-09",
            "--worker",
            "w-0001",
            "--advance",
            &id,
        ],
    );
    assert_eq!(month.status.code(), Some(2), "{}", stderr(&month));
    assert_eq!(advance_state(&store, &id)["state"], "unsigned");

    let png = dir.path().join("sig.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nstrokes").unwrap();
    let out = ok(
        &store,
        &[
            &["sign"][..],
            &day,
            &["--worker", "w-0001", "--advance", &id, "--image", png.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.contains("w-0001") && out.contains(&id), "{out}");
    let state = advance_state(&store, &id);
    assert_eq!(state["state"], "signed", "{state}");
    let sha = hex::encode(Sha256::digest(std::fs::read(&png).unwrap()));
    assert_eq!(state["confirmation"]["image"], sha.as_str());
    assert_eq!(state["confirmation"]["action"], "advance_confirmed");
    // His day is not signed by it.
    assert_eq!(worker_state(&store, "w-0001")["state"], "unsigned");

    ok(
        &store,
        &[&["advance"][..], &day, &["--edit", &id, "--amount", "350"]].concat(),
    );
    let state = advance_state(&store, &id);
    assert_eq!(state["state"], "changed_since_signed", "{state}");
    assert_eq!(state["confirmation"]["image"], sha.as_str(), "kept");
    assert_eq!(state["changes"][0]["field"], "amount_fen");
    assert_eq!(
        (
            state["changes"][0]["approved"].as_str(),
            state["changes"][0]["now"].as_str()
        ),
        (Some("30000"), Some("35000"))
    );
    let text = ok(&store, &[&["advances"][..], &day].concat());
    assert!(
        text.contains("changed_since_signed") && text.contains("amount_fen"),
        "{text}"
    );

    // A dispute of the advance holds the day's approval until it is answered.
    let disputed = json(
        &store,
        &[
            &["dispute"][..],
            &day,
            &[
                "--worker",
                "w-0001",
                "--advance",
                &id,
                "--reason",
                "只拿了 300",
                "--json",
            ],
        ]
        .concat(),
    );
    let dispute = disputed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(advance_state(&store, &id)["state"], "disputed");
    ok(&store, &[&["submit"][..], &day].concat());
    let refused = sitesync(&store, &[&["approve"][..], &day].concat());
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains(&dispute), "{}", stderr(&refused));
    ok(
        &store,
        &[
            &["answer-dispute"][..],
            &day,
            &["--dispute", &dispute, "--reason", "另 50 元已补记"],
        ]
        .concat(),
    );
    assert_eq!(advance_state(&store, &id)["state"], "changed_since_signed");
    ok(&store, &[&["approve"][..], &day].concat());
    let pay = |store: &std::path::Path| {
        let sheet = json(
            store,
            &[
                "pay",
                "--site",
                SITE,
                "--crew",
                "site-hz-01/crew-1",
                "--from",
                DATE,
                "--to",
                DATE,
                "--json",
            ],
        );
        sheet["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["worker"] == "w-0001")
            .cloned()
            .unwrap()
    };
    let line = pay(&store);
    assert_eq!(
        (
            &line["advances_fen"],
            &line["advances_unconfirmed_fen"],
            &line["advances_unconfirmed"]
        ),
        (&Value::from(35_000), &Value::from(35_000), &Value::from(1)),
        "{line}"
    );
    let pay_text = |store: &std::path::Path| {
        ok(
            store,
            &[
                "pay",
                "--site",
                SITE,
                "--crew",
                "site-hz-01/crew-1",
                "--from",
                DATE,
                "--to",
                DATE,
            ],
        )
    };
    let text = pay_text(&store);
    assert!(text.contains("w-0001: 1 advance(s), ¥350.00, not confirmed"), "{text}");
    // He confirms the corrected amount (after the approval: a sign-off is not locked).
    ok(
        &store,
        &[&["sign"][..], &day, &["--worker", "w-0001", "--advance", &id]].concat(),
    );
    let line = pay(&store);
    assert_eq!(line["advances_unconfirmed_fen"], 0, "{line}");
    assert!(!pay_text(&store).contains("not confirmed"));
}
