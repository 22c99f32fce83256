//! The first minute with the real binary, as a newcomer meets it: a port already taken is refused
//! before anything is written, a first start says each thing once, and an admin command that fails
//! says why in one line, whatever `RUST_BACKTRACE` says.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use sitesync_server::storage::with;
use support::DataDir;

/// Runs `command` to its end (SIGKILLed after 30 s); returns its exit status, stdout and stderr.
fn run(command: &mut Command) -> (std::process::ExitStatus, String, String) {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!("{command:?} did not end within 30 s");
    };
    let out = out.unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_port_already_taken_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, stdout, stderr) = run(Command::new(support::server_bin())
        .args(["serve", "--demo", "--listen", &addr])
        .args(data.args()));
    assert!(!status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("in use"),
        "the error says the address is in use: {stderr}"
    );
    assert!(stderr.contains(&addr), "and which address: {stderr}");
    assert!(
        !data.exists(),
        "no data directory, database or token file: {:?}",
        std::fs::read_dir(&data).map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
    );
    if let Some(db) = data.postgres() {
        let schemas = with(&db.connect(1), |sql| {
            sql.one(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'sitesync%'",
                &[],
            )?
            .int(0)
        })
        .unwrap();
        assert_eq!(schemas, 0, "nor any schema in PostgreSQL");
    }
}

#[test]
fn a_first_start_says_each_thing_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, log) = (DataDir::new(dir.path().join("data")), dir.path().join("out.log"));
    let addr = support::free_addr();
    // Everything it says, on stdout and stderr, at the default log level.
    let out = std::fs::File::create(&log).unwrap();
    let mut server = support::Process(
        Command::new(support::server_bin())
            .args(["serve", "--listen", &addr.to_string()])
            .args(data.args())
            .env_remove("RUST_LOG")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
    );
    support::healthy(&mut server, addr, &log, "first start");
    support::stop(server);
    let said = std::fs::read_to_string(&log).unwrap();
    let token_file = data.join("admin-token").display().to_string();
    let about_the_token: Vec<&str> = said.lines().filter(|l| l.contains(&token_file)).collect();
    assert_eq!(
        about_the_token.len(),
        1,
        "one line says where the admin token is:\n{said}"
    );
    let listening: Vec<&str> = said.lines().filter(|l| l.contains("listening on")).collect();
    assert_eq!(listening.len(), 1, "{said}");
}

#[test]
fn a_failing_admin_command_says_why_in_one_line_whatever_rust_backtrace_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    for backtrace in ["0", "1", "full"] {
        let (status, stdout, stderr) = run(Command::new(support::server_bin())
            .arg("admin")
            .args(data.args())
            .args(["grant", "--user", "u-nobody", "--site", "site-nowhere"])
            .env("RUST_BACKTRACE", backtrace)
            .env("RUST_LIB_BACKTRACE", backtrace)
            .env("RUST_LOG", "warn"));
        assert!(!status.success(), "RUST_BACKTRACE={backtrace}: {stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines,
            ["error: not found: user u-nobody"],
            "RUST_BACKTRACE={backtrace}: one readable line"
        );
    }
}
