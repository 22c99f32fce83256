//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for the
//! dashboard's end-to-end tests. Speaks the W3C WebDriver JSON protocol with the HTTP client the
//! tests already use.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; the driver process is killed on drop.
pub struct Browser {
    /// The driver process.
    driver: Child,
    /// The driver's base URL.
    base: String,
    /// The session id.
    session: String,
    http: reqwest::Client,
    /// The browser's profile directory.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Whether Chromium and its driver are installed.
    pub fn available() -> bool {
        Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists()
    }

    /// Starts chromedriver on a free loopback port and opens a headless session.
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group, which Chromium and its helpers join, so that drop can end them all.
        let driver = Command::new("/usr/bin/chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    /// Opens a URL.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        if std::env::var_os("SITESYNC_DEBUG_BROWSER").is_some() {
            eprintln!("find {css}: {v}");
        }
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits (20 s at most) for an element matching `css` whose text contains `text`.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut last = Value::Null;
        loop {
            if let Some(el) = self.find(css).await {
                let got = self
                    .call(reqwest::Method::GET, &format!("/element/{el}/text"), None)
                    .await;
                if let Some(s) = got.as_str()
                    && s.contains(text)
                {
                    return s.to_string();
                }
                last = got;
            }
            if tokio::time::Instant::now() >= deadline {
                let source = self.call(reqwest::Method::GET, "/source", None).await;
                let shot = std::env::temp_dir().join("sitesync-failed.png");
                self.screenshot(&shot).await;
                panic!(
                    "no {css} containing {text:?} (last: {last}); screenshot {}; page: {}",
                    shot.display(),
                    source.as_str().unwrap_or("?").chars().take(1500).collect::<String>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks an element (waiting for it to appear).
    pub async fn click(&self, css: &str) {
        self.wait_text(css, "").await;
        let el = self.find(css).await.unwrap();
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({})))
            .await;
    }

    /// Replaces the text of an input.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.wait_text(css, "").await;
        let el = self.find(css).await.unwrap();
        self.call(reqwest::Method::POST, &format!("/element/{el}/clear"), Some(json!({})))
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Runs an async script: the last argument is the callback that returns its result.
    pub async fn run_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Saves a PNG screenshot of the page.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Browser {
    /// Ends the browser and returns the processes still running with its profile 5 s later (none,
    /// unless Chromium outlived its driver). The kill is asynchronous: a killed renderer can stay in
    /// the process table for a moment, so an immediate look would see it.
    pub fn close(self) -> Vec<String> {
        let profile = self._profile.path().display().to_string();
        drop(self);
        let alive = || {
            Command::new("pgrep")
                .args(["-a", "-f", "--", &format!("--user-data-dir={profile}")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<String> = alive();
            if left.is_empty() || std::time::Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    /// Kills the driver's whole process group: killing chromedriver alone left the headless
    /// Chromium it started running after every test.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let killed = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !killed {
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}
