//! A `redis-server` of the test's own, on a free loopback port, so the test can stop
//! and restart it; the shared one on 6379 is never touched. It saves its data on
//! shutdown (as Redis does by default), so a restart brings back what was in it: the
//! situation in which a missed invalidation could resurface.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers. Panics when `redis-server` is missing:
    /// a test that asks for Redis fails without it, it never skips.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("a directory for the Redis snapshot");
        let mut server = Self {
            port: free_port(),
            dir,
            child: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `metric{redis="127.0.0.1:port"} value`: this server's series of a Redis metric,
    /// apart from those of other tests' servers in the same process.
    pub fn series(&self, metric: &str, value: &str) -> String {
        format!("{metric}{{redis=\"127.0.0.1:{}\"}} {value}", self.port)
    }

    fn snapshot_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Stops it as an operator would (SIGTERM): it saves a snapshot and exits.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().expect("wait for redis-server").is_none() {
                assert!(Instant::now() < deadline, "redis-server did not stop");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers, the worst kind
    /// of outage for a client without timeouts.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// Starts it again on the same port, loading the snapshot it saved.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "3600 1", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.snapshot_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = redis::Client::open(self.url())
                .expect("a valid URL")
                .get_multiplexed_async_connection()
                .await
                && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered on {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}
