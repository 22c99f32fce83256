//! How the CLI speaks: plurals that agree with their count, and Chinese when the locale says so.

use crate::common::{add_line, ok, sitesync, sitesync_in, small_fixture, small_store, stderr, stdout};

#[test]
fn counts_agree_with_their_nouns() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite3");
    let out = ok(&store, &["import", small_fixture().to_str().unwrap()]);
    assert!(out.starts_with("imported 1 site, 53 workers, 3 days, "), "{out}");

    let id = stdout(&add_line(&store, "site-hz-01", "2026-09-05", "w-0001", "1.0"));
    let day = ok(&store, &["day", "--site", "site-hz-01", "--date", "2026-09-05"]);
    assert!(day.contains("\n1 line, 1.00 work-days, ¥430.00\n"), "{day}");
    assert!(
        add_line(&store, "site-hz-01", "2026-09-05", "w-0002", "1.0")
            .status
            .success()
    );
    let day = ok(&store, &["day", "--site", "site-hz-01", "--date", "2026-09-05"]);
    assert!(day.contains("\n2 lines, 2.00 work-days, "), "{day}");
    ok(&store, &["labor", "rm", id.trim()]);
    // Only the day written since the import has chunks to fold: one document.
    let compacted = ok(&store, &["compact"]);
    assert_eq!(compacted, "compacted 1 document\n");
}

#[test]
fn chinese_when_the_locale_says_so_english_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let zh = [("LANG", "zh_CN.UTF-8")];

    let out = sitesync_in(&store, &["import", small_fixture().to_str().unwrap()], &zh);
    assert!(
        stdout(&out).starts_with("已导入 1 个工地、53 名工人、3 天、"),
        "{}",
        stdout(&out)
    );

    let out = sitesync_in(&store, &["day", "--site", "HZ-01", "--date", "2026-09-03"], &zh);
    let day = stdout(&out);
    assert!(
        day.contains("状态：草稿") && day.contains("工日") && day.contains("条记录"),
        "{day}"
    );
    assert!(!day.contains("status:") && !day.contains("work-days"), "{day}");
    assert!(stderr(&out).contains("工地 HZ-01：使用 site-hz-01"), "{}", stderr(&out));

    let out = sitesync_in(&store, &["day", "--site", "HZ-1", "--date", "2026-9-3"], &zh);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("错误：没有工地 \"HZ-1\""), "{}", stderr(&out));

    let typo = dir.path().join("typo.sqlite3");
    let out = sitesync_in(&typo, &["sites"], &zh);
    assert!(
        stderr(&out).starts_with("错误：") && stderr(&out).contains("没有数据文件"),
        "{}",
        stderr(&out)
    );

    let out = sitesync_in(
        &store,
        &[
            "totals",
            "--site",
            "site-hz-01",
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-03",
        ],
        &[("LC_MESSAGES", "zh_CN.UTF-8")],
    );
    let totals = stdout(&out);
    assert!(totals.starts_with("分组") && totals.contains("合计"), "{totals}");

    // LC_ALL outranks LANG, as in every other program; and any other language is English.
    for env in [
        [("LANG", "zh_CN.UTF-8"), ("LC_ALL", "C")],
        [("LANG", "de_DE.UTF-8"), ("LC_ALL", "")],
    ] {
        let out = sitesync_in(&store, &["day", "--site", "site-hz-01", "--date", "2026-09-03"], &env);
        assert!(stdout(&out).contains("status: draft"), "{env:?}: {}", stdout(&out));
    }
    let out = sitesync(&store, &["status"]);
    assert!(stdout(&out).starts_with("server:     (not bound"), "{}", stdout(&out));
}
