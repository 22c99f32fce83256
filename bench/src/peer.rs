//! Scenario 4, the peer: the same workloads against the automerge-repo sync server on Node, run by
//! `bench/peer/run.sh` (which installs the npm packages into `target/bench-peer` on first use).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// Runs one peer workload (`upload --docs 200 --entries 50`, `devices --n 100`, …) and returns the
/// JSON object its last line prints.
pub fn run(repo: &Path, args: &[String]) -> Result<serde_json::Value> {
    let output = Command::new("bash")
        .arg(repo.join("bench/peer/run.sh"))
        .args(args)
        .current_dir(repo)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running bench/peer/run.sh (needs bash, node and npm)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "peer {args:?} failed: {stdout}");
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("peer printed no figures")?;
    Ok(serde_json::from_str(last)?)
}

/// A number field of the peer's figures.
pub fn num(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN)
}
