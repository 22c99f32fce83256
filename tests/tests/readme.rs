//! README.md, run as written. Every `sh` block is read from the README itself, in order, and run in
//! one shell (variables carry over, as in one terminal) in a fresh directory, against a server the
//! test starts with the arguments of the README's own `serve --demo` command. Each command's exit
//! status is checked, and a key figure of its output where it prints one.
//!
//! What the test changes, and only this: `cargo build` is a no-op and `target/release` is the
//! directory of the binaries this test run built (a release build here would take minutes); the
//! `--watch` command runs for a few seconds; and the server listens on a free port instead of 8080
//! (so that a demo you left running does not fail the tests), which the commands are pointed at. A block the test cannot run says so in the README, in
//! an HTML comment right above it (`<!-- readme-test: skip, REASON -->`), and the reason is printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One fenced `sh` block.
#[derive(Debug)]
struct Block {
    /// The section it is under, for messages.
    heading: String,
    /// The block's text.
    code: String,
    /// Why the test does not run it, from the README's own comment.
    skip: Option<String>,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut skip = None;
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.to_string();
        } else if let Some(reason) = line
            .trim()
            .strip_prefix("<!-- readme-test: skip,")
            .and_then(|r| r.strip_suffix("-->"))
        {
            skip = Some(reason.trim().to_string());
        } else if line.trim() == "```sh" {
            let mut code = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                code.push_str(l);
                code.push('\n');
            }
            out.push(Block {
                heading: heading.clone(),
                code,
                skip: skip.take(),
            });
        } else if !line.trim().is_empty() {
            // A skip comment applies to the block right below it only.
            skip = None;
        }
    }
    out
}

/// The logical commands of a block: continuation lines joined, blank and comment lines dropped.
fn commands(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in code.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The directory holding this run's `sitesync` and `sitesync-server`: built by `cargo test
/// --workspace --all-features` before any test runs, and built here when this test runs alone and
/// they are missing or older than their sources.
fn binaries() -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = [
        "client-core/src",
        "client-core/migrations",
        "server/src",
        "server/assets",
        "Cargo.lock",
    ]
    .iter()
    .filter_map(|p| newest(&root.join(p)))
    .max();
    let stale = |b: &str| {
        let built = std::fs::metadata(dir.join(b)).and_then(|m| m.modified()).ok();
        built.is_none_or(|t| sources.is_some_and(|s| s > t))
    };
    if ["sitesync", "sitesync-server"].iter().any(|b| stale(b)) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "sitesync-server",
                "-p",
                "sitesync-core",
                "--features",
                "sitesync-core/cli",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the binaries failed");
    }
    dir
}

/// The newest modification time of a file or of any file below a directory.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// The demo server, started as the README starts it; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address the README's commands use.
const README_ADDR: &str = "127.0.0.1:8080";

fn start_server(bin: &Path, work: &Path, command: &str, addr: &str) -> Server {
    let args = command
        .split_once(" -- ")
        .map(|(_, a)| a)
        .unwrap_or_else(|| panic!("the server command has no `--`: {command}"));
    let log = std::fs::File::create(work.join("server.log")).unwrap();
    let child = Command::new(bin.join("sitesync-server"))
        .args(args.split_whitespace())
        .args(["--listen", addr])
        .current_dir(work)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the demo server did not start: {}",
            log_of(work)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Listening comes before the demo is loaded only if start-up is reordered; wait for the tokens.
    while !work.join("sitesync-data/demo-tokens.txt").exists() {
        assert!(Instant::now() < deadline, "no demo tokens: {}", log_of(work));
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn log_of(work: &Path) -> String {
    std::fs::read_to_string(work.join("server.log")).unwrap_or_default()
}

/// Shell functions in front of the README's commands; see the module's doc for why each exists.
const PRELUDE: &str = r#"set -euo pipefail
cargo() {
    case "$1" in
        build) return 0 ;;
        *) echo "readme test: cannot run 'cargo $*' from the README" >&2; return 1 ;;
    esac
}
sitesync() {
    case " $* " in
        *" --watch "*)
            local rc=0
            timeout 4 "$BIN/sitesync" "$@" || rc=$?
            [ "$rc" = 124 ] || return "$rc"
            ;;
        *) "$BIN/sitesync" "$@" ;;
    esac
}
"#;

/// A command's output, by the marker the script printed before it.
struct Ran {
    block: usize,
    command: String,
    output: String,
}

fn json(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The key figure each kind of command must show; `None` where the command prints nothing to check
/// (an assignment, an export).
fn check(command: &str, out: &str, work: &Path) -> Option<Result<(), String>> {
    let ok = |cond: bool, what: &str| if cond { Ok(()) } else { Err(format!("{what}: {out}")) };
    let c = command;
    // The printable 施工日志, from the server and from a phone's store: a PDF file.
    let pdf = |file: &str| std::fs::read(work.join(file)).unwrap_or_default().starts_with(b"%PDF-");
    Some(if c.contains("/v1/reports/daily-log") {
        let file = c.split("-o ").nth(1).unwrap().split_whitespace().next().unwrap();
        ok(pdf(file), "a PDF file")
    } else if c.contains(" daily-log ") {
        let file = c.split("--out ").nth(1).unwrap().split_whitespace().next().unwrap();
        ok(pdf(file), "a PDF file")
    } else if c.contains("/v1/reports/labor") {
        let v = json(out);
        ok(
            v["total"]["cost_fen"].as_i64().unwrap_or(0) > 0,
            "a labor summary with a cost",
        )
    } else if c.contains("/v1/pay") && c.contains("-o ") && c.contains("format=pdf") {
        let file = c.split("-o ").nth(1).unwrap().split_whitespace().next().unwrap();
        ok(pdf(file), "a printed pay sheet")
    } else if c.contains(" pay ") && c.contains("--pdf ") {
        let file = c.split("--pdf ").nth(1).unwrap().split_whitespace().next().unwrap();
        ok(pdf(file), "a printed pay sheet")
    } else if c.contains("/v1/pay") && c.contains("-o ") {
        let file = c.split("-o ").nth(1).unwrap().split_whitespace().next().unwrap();
        let bytes = std::fs::read(work.join(file)).unwrap_or_default();
        ok(bytes.starts_with(b"PK"), "an Excel pay sheet")
    } else if c.contains("/v1/reports/attendance") && c.contains("-o ") {
        let file = c.split("-o ").nth(1).unwrap().split_whitespace().next().unwrap();
        let bytes = std::fs::read(work.join(file)).unwrap_or_default();
        ok(bytes.starts_with(b"PK"), "an Excel file")
    } else if c.contains("/v1/reports/progress") {
        let v = json(out);
        ok(
            v["items"].as_array().is_some_and(|i| !i.is_empty()),
            "progress per work item",
        )
    } else if c.contains("/v1/reports/anomalies") {
        ok(json(out).is_array(), "a list of anomalies")
    } else if c.contains("-X POST") && c.contains("/v1/approvals") {
        let v = json(out);
        ok(
            v.as_array()
                .is_some_and(|r| !r.is_empty() && r.iter().all(|d| d["ok"] == true)),
            "every decision taken",
        )
    } else if c.contains("/v1/approvals") {
        ok(
            json(out).as_array().is_some_and(|a| !a.is_empty()),
            "days waiting for a decision",
        )
    } else if c.contains("/v1/history") {
        ok(json(out).is_object() || json(out).is_array(), "the history")
    } else if c.contains("/v1/devices") {
        ok(
            json(out)
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d["last_connection"].is_string())),
            "devices, some of which synced",
        )
    } else if c.contains("/v1/conflicts") {
        ok(json(out).is_array(), "the open conflicts")
    } else if c.contains("/v1/refusals") {
        ok(json(out).is_array() || json(out).is_object(), "the refusals")
    } else if c.contains("/v1/reports/okr") {
        let file = c.split("-o ").nth(1).unwrap().split_whitespace().next().unwrap();
        let bytes = std::fs::read(work.join(file)).unwrap_or_default();
        ok(bytes.starts_with(b"PK"), "an Excel file")
    } else if c.contains("verify-evidence") {
        ok(
            out.to_lowercase().contains("verified") || out.contains("ok"),
            "a verified file",
        )
    } else if c.contains(" status") && c.starts_with("sitesync") {
        ok(out.contains("pending"), "what is pending")
    } else if c.contains(" day --site") {
        ok(out.lines().count() >= 2, "the day's lines")
    } else if c.contains(" history ") {
        ok(!out.trim().is_empty(), "who wrote each change")
    } else if c.contains("okr show") {
        ok(!out.trim().is_empty(), "the board")
    } else if c.contains(" due") && c.starts_with("sitesync") {
        // The day logged above is not submitted: its log is due.
        ok(
            out.contains("log not submitted") || out.contains("日志未提交") || out.contains("log_not_submitted"),
            "today's log, not submitted",
        )
    } else {
        return None;
    })
}

// On SQLite whatever SITESYNC_TEST_ENGINE says: the README's commands run as written, with `--data`.
#[test]
fn every_shell_block_of_the_readme_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let bin = binaries();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("target")).unwrap();
    std::os::unix::fs::symlink(&bin, work.path().join("target/release")).unwrap();

    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut server = None;
    let mut script = String::from(PRELUDE);
    for (b, block) in blocks(&readme).iter().enumerate() {
        if let Some(reason) = &block.skip {
            eprintln!("readme test: not run ({}): {reason}", block.heading);
            continue;
        }
        for (i, command) in commands(&block.code).iter().enumerate() {
            if command.contains("serve --demo") && server.is_none() {
                server = Some(start_server(&bin, work.path(), command, &addr));
                continue;
            }
            let command = command.replace(README_ADDR, &addr);
            script.push_str(&format!("printf '\\n@@ {b} {i}\\n'\n{command}\n"));
        }
    }
    let _server = server.expect("the README starts a demo server");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("BIN", &bin)
        // The checks read the English the CLI prints outside a Chinese locale.
        .env("LC_ALL", "C.UTF-8")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Split the output at the markers.
    let blocks = blocks(&readme);
    let mut ran: Vec<Ran> = Vec::new();
    for part in stdout.split("\n@@ ").skip(1) {
        let (head, output) = part.split_once('\n').unwrap_or((part, ""));
        let mut n = head.split(' ').map(|x| x.parse::<usize>().unwrap());
        let (b, i) = (n.next().unwrap(), n.next().unwrap());
        ran.push(Ran {
            block: b,
            command: commands(&blocks[b].code)[i].clone(),
            output: output.to_string(),
        });
    }
    let last = ran.last().map(|r| r.command.clone()).unwrap_or_default();
    assert!(
        out.status.success(),
        "the README stopped at `{last}` ({}):\n{}\nstderr:\n{stderr}\nserver:\n{}",
        out.status,
        ran.last().map(|r| r.output.as_str()).unwrap_or(""),
        log_of(work.path())
    );
    let mut checked = BTreeMap::new();
    for r in &ran {
        if let Some(result) = check(r.command.trim(), &r.output, work.path()) {
            if let Err(e) = result {
                panic!("`{}` ({}): {e}", r.command.trim(), blocks[r.block].heading);
            }
            checked.insert(r.command.trim().to_string(), ());
        }
    }
    eprintln!(
        "readme test: {} commands ran, {} with a key figure checked",
        ran.len(),
        checked.len()
    );
}

/// The paths one line of the layout block names: `a/{b,c}.rs` is two.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &path[..open], &path[close + 1..])))
            .collect(),
        _ => vec![path.to_string()],
    }
}

/// README's "Layout" block names only what exists, and every file git tracks is named or lies under a
/// folder the block names: a crate's own line (`server/`) stands for the crate only when nothing of it
/// is listed below; a folder listed inside a crate (`src/store/`) covers what it holds.
#[test]
fn the_layout_block_matches_the_tracked_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme
        .split("## Layout\n\n```\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("README has a Layout block");
    let mut entries = Vec::new();
    let mut folders = Vec::new();
    let mut parent = String::new();
    for line in block.lines() {
        let indented = line.starts_with("  ");
        let path = line.split_whitespace().next().unwrap_or_default();
        if indented {
            let named = expand(&format!("{parent}{path}"));
            folders.extend(named.iter().filter(|p| p.ends_with('/')).cloned());
            entries.extend(named);
        } else {
            parent = path.to_string();
            entries.extend(expand(path));
        }
    }
    // Top-level folders with nothing listed below them.
    for e in &entries {
        if e.ends_with('/') && !entries.iter().any(|o| o != e && o.starts_with(e.as_str())) {
            folders.push(e.clone());
        }
    }
    let out = Command::new("git")
        .args(["ls-files"])
        .current_dir(&root)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for entry in &entries {
        let exists = if entry.ends_with('/') {
            files.iter().any(|f| f.starts_with(entry.as_str()))
        } else {
            files.contains(entry)
        };
        assert!(exists, "the layout names {entry}, which git does not track");
    }
    let unnamed: Vec<&String> = files
        .iter()
        .filter(|f| !entries.contains(f) && !folders.iter().any(|l| f.starts_with(l.as_str())))
        .collect();
    assert!(unnamed.is_empty(), "files the layout does not name: {unnamed:#?}");
}
