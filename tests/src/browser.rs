//! Debian's Chromium, headless, as a user's browser whose network ends at this machine:
//! every host name but `127.0.0.1` fails to resolve and everything not on loopback is
//! sent to a proxy that is not there. Chromium's NetLog records each request, so a
//! test can check what a page asked for, not only what it showed.

use std::path::PathBuf;
use std::process::Command;

/// What a page did in the browser.
pub struct Visit {
    /// The DOM once scripts have run (`--dump-dom` after a virtual-time budget).
    pub dom: String,
    /// Every URL the page itself requested (its own network partition; the browser's
    /// background traffic, such as update checks, is left out).
    pub requests: Vec<String>,
}

fn chromium() -> PathBuf {
    let path = PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.exists(),
        "{} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM",
        path.display()
    );
    path
}

/// Loads `url` in headless Chromium with the network limited to loopback and returns
/// the rendered DOM and the page's requests.
pub fn visit_offline(url: &str) -> Visit {
    let dir = tempfile::tempdir().unwrap();
    let netlog = dir.path().join("netlog.json");
    let mut chromium = Command::new(chromium());
    chromium
        .args([
            "--headless",
            // Chromium's sandbox refuses to start as root, which CI runs as.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            // The browser's own form-field lookup is filed under the page's network partition.
            "--disable-features=AutofillServerCommunication",
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(url);
    let output = crate::cluster::succeed(&mut chromium, "chromium");
    let origin = reqwest::Url::parse(url).unwrap();
    let top_frame = format!("{}://{}", origin.scheme(), origin.host_str().unwrap());
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&netlog).expect("chromium wrote its NetLog")).expect("a NetLog is JSON");
    let requests = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| &event["params"])
        .filter(|params| {
            params["method"].is_string()
                && params["network_isolation_key"]
                    .as_str()
                    .is_some_and(|key| key.starts_with(&top_frame))
        })
        .filter_map(|params| params["url"].as_str().map(str::to_owned))
        .collect();
    Visit {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        requests,
    }
}
