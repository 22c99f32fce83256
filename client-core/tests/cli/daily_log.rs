//! `daily-log`: the 施工日志 of a site-day as a PDF, read back with poppler (`pdftotext`,
//! `pdftoppm`, `pdffonts`; Debian's poppler-utils, installed by `.ci/run`) as a person would see it.

use std::path::Path;
use std::process::Command;

use sha2::Digest;
use sitesync_core::units::{fixed, yuan};

use crate::common::{json, ok, sitesync, small_store, stderr};

/// Whether poppler can be run here. Without it the PDF is not read back: skipped with a note on a
/// developer's machine (the README's test command works without installing it), a failure where
/// `SITESYNC_REQUIRE_POPPLER` is set, as `.ci/run` sets it.
fn poppler_here() -> bool {
    let found = Command::new("pdftotext").arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("SITESYNC_REQUIRE_POPPLER").is_none(),
            "SITESYNC_REQUIRE_POPPLER is set and pdftotext is missing: install poppler-utils"
        );
        eprintln!("poppler-utils is not installed: the PDF is not read back (install it to run this test)");
    }
    found
}

/// Runs a poppler tool.
fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e} (install poppler-utils)"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A page as grey pixels (`pdftoppm -gray`): width, height and one byte a pixel, row by row;
/// `crop` is x, y, width, height in pixels.
fn grey(pdf: &Path, page: usize, dpi: u32, crop: Option<[u32; 4]>) -> (usize, usize, Vec<u8>) {
    let (page, dpi) = (page.to_string(), dpi.to_string());
    let mut args: Vec<String> = ["-gray", "-r", &dpi, "-f", &page, "-l", &page]
        .map(String::from)
        .to_vec();
    if let Some([x, y, w, h]) = crop {
        for (k, v) in [("-x", x), ("-y", y), ("-W", w), ("-H", h)] {
            args.extend([k.to_string(), v.to_string()]);
        }
    }
    args.push(pdf.to_str().unwrap().to_string());
    let pgm = poppler("pdftoppm", &args.iter().map(String::as_str).collect::<Vec<_>>());
    // Binary PGM: "P5", width, height, maxval, each followed by whitespace, then one byte a pixel.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !pgm[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8(pgm[start..at].to_vec()).unwrap());
    }
    assert_eq!(fields[0], "P5");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = pgm[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h, "a grey byte per pixel");
    (w, h, pixels)
}

/// The share of a page's pixels that are ink (darker than mid-grey), at 40 dpi.
fn ink(pdf: &Path, page: usize) -> f64 {
    let (_, _, pixels) = grey(pdf, page, 40, None);
    pixels.iter().filter(|&&p| p < 128).count() as f64 / pixels.len() as f64
}

/// The ink of each character of the title 施工日志, drawn by the glyphs themselves: poppler
/// extracts the text from the file's Unicode map even where every glyph is the font's empty box,
/// so only the picture tells the glyphs are there. At 72 dpi a point is a pixel: the title is four
/// 20-point characters centred on the A4 page's 595-point width, its baseline 62 points down.
fn title_ink(pdf: &Path) -> Vec<usize> {
    let left = (595.28f32 - 80.0) / 2.0;
    let (w, h, pixels) = grey(pdf, 1, 72, Some([left as u32, 40, 80, 28]));
    (0..4)
        .map(|c| {
            (0..h)
                .flat_map(|y| (c * w / 4..(c + 1) * w / 4).map(move |x| (x, y)))
                .filter(|&(x, y)| pixels[y * w + x] < 128)
                .count()
        })
        .collect()
}

#[test]
fn the_pdf_holds_the_days_lines_in_chinese_and_renders() {
    if !poppler_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let day = ["--site", "site-hz-01", "--date", "2026-09-02"];
    ok(
        &store,
        &[
            &["day-note"][..],
            &day,
            &["--weather", "晴转多云", "--note", "浇筑前复查模板支撑"],
        ]
        .concat(),
    );
    ok(
        &store,
        &[&["delay"][..], &day, &["--text", "商品混凝土晚到两小时"]].concat(),
    );
    // Evidence of the day: one worker signs with an image, a second disputes and is answered, a
    // photo is attached (a dark 200×150 PNG, so its thumbnail shows as ink).
    let before = json(&store, &[&["daily-log"][..], &day, &["--json"]].concat());
    let mut ids: Vec<String> = before["labor"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["worker"].as_str().unwrap().to_string())
        .collect();
    ids.dedup();
    let (signer, answered, disputer) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let signature = dir.path().join("sig.png");
    std::fs::write(&signature, b"\x89PNG\r\n\x1a\nstrokes").unwrap();
    fn for_worker<'a>(day: &[&'a str], w: &'a str) -> Vec<&'a str> {
        [day, &["--worker", w]].concat()
    }
    let worker = |w| for_worker(&day, w);
    ok(
        &store,
        &[
            &["sign"][..],
            &worker(signer),
            &["--image", signature.to_str().unwrap()],
        ]
        .concat(),
    );
    let dispute = json(
        &store,
        &[
            &["dispute"][..],
            &worker(answered),
            &["--reason", "下午在别的工地", "--json"],
        ]
        .concat(),
    );
    let dispute = dispute[0]["id"].as_str().unwrap();
    ok(
        &store,
        &[
            &["answer-dispute"][..],
            &day,
            &["--dispute", dispute, "--reason", "已核对考勤"],
        ]
        .concat(),
    );
    let photo = dir.path().join("formwork.png");
    image::RgbImage::from_fn(200, 150, |x, y| image::Rgb([(x / 4) as u8, (y / 3) as u8, 40]))
        .save(&photo)
        .unwrap();
    let sha = ok(
        &store,
        &[
            &["attach"][..],
            &day,
            &[photo.to_str().unwrap(), "--caption", "模板支撑复查照片"],
        ]
        .concat(),
    );
    assert!(
        sha.contains(&hex::encode(sha2::Sha256::digest(std::fs::read(&photo).unwrap()))),
        "{sha}"
    );
    ok(&store, &[&["submit"][..], &day].concat());
    ok(&store, &[&["--user", "陈经理", "approve"][..], &day].concat());
    // A dispute after approval stays open on the log.
    ok(
        &store,
        &[&["dispute"][..], &worker(disputer), &["--reason", "加班没有记"]].concat(),
    );

    let log = json(&store, &[&["daily-log"][..], &day, &["--json"]].concat());
    let pdf = dir.path().join("log.pdf");
    let out = sitesync(
        &store,
        &[&["daily-log"][..], &day, &["--out", pdf.to_str().unwrap()]].concat(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Four different glyphs, not four empty boxes: 施 is denser than 工.
    let title = title_ink(&pdf);
    assert!(title.iter().all(|&n| n > 10), "a title glyph is missing: {title:?}");
    assert!(title[1] < title[0], "施 and 工 drawn alike, as boxes: {title:?}");
    assert!(
        title.iter().any(|&n| n != title[0]),
        "every title glyph the same: {title:?}"
    );

    assert!(
        !stderr(&out).contains("glyph"),
        "every character of the log is in the shipped font: {}",
        stderr(&out)
    );

    // The font travels in the file: a machine without CJK fonts shows the same page.
    let fonts = String::from_utf8(poppler("pdffonts", &[pdf.to_str().unwrap()])).unwrap();
    let cjk = fonts
        .lines()
        .find(|l| l.contains("NotoSansCJKsc"))
        .unwrap_or_else(|| panic!("{fonts}"));
    assert!(
        cjk.contains("yes yes yes"),
        "embedded, subset, with a Unicode map: {fonts}"
    );

    let text = String::from_utf8(poppler("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"])).unwrap();
    // pdftotext spaces text by its gaps, not by the spaces written: compare without whitespace.
    let flat = |s: &str| s.split_whitespace().collect::<String>();
    let all = flat(&text);
    let has = |s: &str| assert!(all.contains(&flat(s)), "{s:?} is not in the PDF's text:\n{text}");
    has("施工日志");
    has(log["site_name"].as_str().unwrap());
    assert_eq!(log["site_name"], "杭州滨江商业综合体");
    has("晴转多云");
    has("浇筑前复查模板支撑");
    has("商品混凝土晚到两小时");
    has("审批人：陈经理");
    has("状态：已审批");
    let labor = log["labor"].as_array().unwrap();
    assert_eq!(labor.len(), 46, "the small fixture's second day");
    for l in labor {
        has(l["worker_name"].as_str().unwrap());
        has(&yuan(l["cost_fen"].as_i64().unwrap()));
        has(&fixed(l["work_days_centi"].as_i64().unwrap(), 2));
    }
    has(&yuan(log["total"]["cost_fen"].as_i64().unwrap()));
    has(&fixed(log["total"]["work_days_centi"].as_i64().unwrap(), 2));
    has(&format!("出勤：{} 人", log["headcount"]));
    for c in log["crews"].as_array().unwrap() {
        has(c["name"].as_str().unwrap());
    }
    for p in log["progress"].as_array().unwrap() {
        has(p["name"].as_str().unwrap());
    }
    // The totals are the sum of the lines, and the crews' headcounts the day's.
    let sum: i64 = labor.iter().map(|l| l["cost_fen"].as_i64().unwrap()).sum();
    assert_eq!(log["total"]["cost_fen"], sum);
    let heads: i64 = log["crews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["headcount"].as_i64().unwrap())
        .sum();
    assert_eq!(log["headcount"], heads);

    // The sign-off section: each worker with lines, by state, and the crews unconfirmed.
    let sign_offs = log["sign_offs"].as_array().unwrap();
    let state = |id: &str| {
        sign_offs
            .iter()
            .find(|s| s["id"] == id && s["role"] == "worker")
            .unwrap_or_else(|| panic!("{id} not in {sign_offs:?}"))
    };
    assert_eq!(state(signer)["state"], "signed");
    assert!(state(signer)["image"].as_str().unwrap().len() == 64);
    assert!(state(signer)["at"].is_string() && !state(signer)["device"].as_str().unwrap().is_empty());
    assert_eq!(state(answered)["state"], "answered");
    assert_eq!(state(disputer)["state"], "disputed");
    assert!(state(disputer)["detail"].as_str().unwrap().contains("加班没有记"));
    assert_eq!(state(ids[3].as_str())["state"], "unsigned");
    assert_eq!(state(ids[3].as_str())["at"], serde_json::Value::Null);
    let workers = sign_offs.iter().filter(|s| s["role"] == "worker").count();
    assert_eq!(
        workers,
        log["headcount"].as_i64().unwrap() as usize,
        "every worker with lines"
    );
    assert!(
        sign_offs
            .iter()
            .any(|s| s["role"] == "crew_leader" && s["state"] == "unconfirmed")
    );
    has("已签认");
    has("异议已答复");
    has("异议：下午在别的工地");
    has("已核对考勤");
    has("有异议");
    has("异议：加班没有记");
    has("未签认");
    has("未确认");
    // The attachment: listed in the JSON (its thumbnail is not), its row and thumbnail in the PDF.
    let attachments = log["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    let a = &attachments[0];
    assert_eq!(a["caption"], "模板支撑复查照片");
    assert_eq!(a["media_type"], "image/png");
    assert_eq!(a["bytes_here"], true);
    assert!(a.get("thumbnail").is_none());
    let sha = a["sha256"].as_str().unwrap();
    has("模板支撑复查照片");
    has(&sha[..12]);
    has("见下图");
    let images = String::from_utf8(poppler("pdfimages", &["-list", pdf.to_str().unwrap()])).unwrap();
    let rows: Vec<&str> = images.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "one picture, the thumbnail:\n{images}");
    let cols: Vec<&str> = rows[0].split_whitespace().collect();
    let (w, h): (u32, u32) = (cols[3].parse().unwrap(), cols[4].parse().unwrap());
    assert!(w <= 256 && w * 3 == h * 4, "the photo's 4:3 thumbnail:\n{images}");

    // Without the photo's bytes on this device (taken on another phone, not synced): the row is
    // printed and says so, no picture is drawn, and the pages hold less ink by the thumbnail's.
    std::fs::remove_dir_all(dir.path().join("phone.sqlite3.blobs")).unwrap();
    let bare = dir.path().join("bare.pdf");
    ok(
        &store,
        &[&["daily-log"][..], &day, &["--out", bare.to_str().unwrap()]].concat(),
    );
    let bare_text = flat(&String::from_utf8(poppler("pdftotext", &["-layout", bare.to_str().unwrap(), "-"])).unwrap());
    assert!(
        bare_text.contains("模板支撑复查照片") && bare_text.contains("未收到原图"),
        "{bare_text}"
    );
    let bare_images = String::from_utf8(poppler("pdfimages", &["-list", bare.to_str().unwrap()])).unwrap();
    assert_eq!(bare_images.lines().count(), 2, "no picture:\n{bare_images}");
    let total_ink = |p: &Path| {
        let info = String::from_utf8(poppler("pdfinfo", &[p.to_str().unwrap()])).unwrap();
        let n: usize = info
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (1..=n).map(|page| ink(p, page)).sum::<f64>()
    };
    let (with, without) = (total_ink(&pdf), total_ink(&bare));
    assert!(
        with > without + 0.01,
        "the thumbnail adds ink: {:.2}% of a page with it, {:.2}% without",
        with * 100.0,
        without * 100.0
    );

    // Every page is drawn, not blank: the first (tables of lines) well inked, the footer on each.
    let info = String::from_utf8(poppler("pdfinfo", &[pdf.to_str().unwrap()])).unwrap();
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap_or_else(|| panic!("{info}"))
        .trim()
        .parse()
        .unwrap();
    assert!(pages >= 2, "46 lines take more than a page:\n{text}");
    has(&format!("共 {pages} 页"));
    let first = ink(&pdf, 1);
    assert!(first > 0.02, "page 1 is {:.2}% ink", first * 100.0);
    for page in 2..=pages {
        assert!(ink(&pdf, page) > 0.001, "page {page} is blank");
    }
}

#[test]
fn a_day_nobody_logged_is_an_empty_draft_and_a_bad_date_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = small_store(dir.path());
    let pdf = dir.path().join("empty.pdf");
    let out = ok(
        &store,
        &[
            "daily-log",
            "--site",
            "HZ-01",
            "--date",
            "2026-10-09",
            "--out",
            pdf.to_str().unwrap(),
        ],
    );
    assert!(out.contains("pages: 1"), "{out}");
    let text = String::from_utf8(poppler("pdftotext", &[pdf.to_str().unwrap(), "-"])).unwrap();
    assert!(
        text.contains("草稿") && text.contains("未审批") && text.contains("未记录"),
        "{text}"
    );

    let bad = sitesync(
        &store,
        &["daily-log", "--site", "HZ-01", "--date", "2026-02-30", "--json"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let missing = sitesync(&store, &["daily-log", "--site", "HZ-01", "--date", "2026-09-02"]);
    assert_eq!(missing.status.code(), Some(2), "--out or --json is required");
}
