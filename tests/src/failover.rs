//! A pg_auto_failover formation of the tests' own: a monitor and two data nodes with
//! synchronous replication, on free loopback ports, in a [`Scratch`] directory owned
//! by the `postgres` user. The manager decides and promotes; the tests only kill
//! things and ask it for a switchover, as an operator would.
//!
//! Each `pg_autoctl run` is a supervisor of its own that starts and stops its
//! PostgreSQL; dropping the [`Formation`] stops them all, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::cluster::{Scratch, as_postgres, free_port, postgres_bin};

/// A data node: its directory and port.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: PathBuf,
    pub port: u16,
}

impl Node {
    /// The superuser's URL for `database` on this node.
    pub fn admin_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The postmaster's process id, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }
}

pub struct Formation {
    scratch: Scratch,
    monitor: PathBuf,
    pub monitor_port: u16,
    pub nodes: Vec<Node>,
    supervisors: Vec<Child>,
}

/// The database pg_auto_failover creates on the data nodes for us.
pub const DATABASE: &str = "bookworm";

impl Formation {
    /// A monitor and two nodes, the first primary, the second its synchronous standby.
    pub async fn start() -> Formation {
        let scratch = Scratch::new("failover");
        let monitor_port = free_port();
        let mut formation = Formation {
            monitor: scratch.dir.join("monitor"),
            scratch,
            monitor_port,
            nodes: Vec::new(),
            supervisors: Vec::new(),
        };
        let monitor = formation.monitor.to_str().unwrap().to_owned();
        let port = monitor_port.to_string();
        formation.autoctl(&[
            "create",
            "monitor",
            "--pgdata",
            &monitor,
            "--pgport",
            &port,
            "--hostname",
            "127.0.0.1",
        ]);
        formation.supervise(&monitor);
        formation
            .wait_for(Duration::from_secs(60), "the monitor", || async {
                Database::connect(formation.monitor_url()).await.is_ok()
            })
            .await;
        for name in ["node1", "node2"] {
            let node = Node {
                data: formation.scratch.dir.join(name),
                port: free_port(),
            };
            let data = node.data.to_str().unwrap().to_owned();
            let port = node.port.to_string();
            let monitor_uri = format!("postgres://autoctl_node@127.0.0.1:{monitor_port}/pg_auto_failover");
            formation.autoctl(&[
                "create",
                "postgres",
                "--pgdata",
                &data,
                "--pgport",
                &port,
                "--hostname",
                "127.0.0.1",
                "--monitor",
                &monitor_uri,
                "--dbname",
                DATABASE,
                "--name",
                name,
            ]);
            formation.supervise(&data);
            formation.nodes.push(node);
            let expected = if formation.nodes.len() == 1 {
                "single"
            } else {
                "secondary"
            };
            formation
                .wait_for(Duration::from_secs(90), &format!("{name} to be {expected}"), || async {
                    formation
                        .states()
                        .await
                        .last()
                        .is_some_and(|(_, reported, goal)| reported == expected && goal == expected)
                })
                .await;
        }
        formation
            .wait_for(
                Duration::from_secs(60),
                "a primary and a synchronous secondary",
                || async {
                    formation
                        .states()
                        .await
                        .iter()
                        .map(|(_, r, _)| r.as_str())
                        .collect::<Vec<_>>()
                        == ["primary", "secondary"]
                },
            )
            .await;
        formation
    }

    /// Runs `pg_autoctl` as `postgres` with this formation's directories, for a test:
    /// loopback only, trust, no TLS.
    fn autoctl(&self, args: &[&str]) {
        let mut all: Vec<&str> = args.to_vec();
        if args.first() == Some(&"create") {
            all.extend(["--listen", "127.0.0.1", "--auth", "trust", "--no-ssl"]);
        }
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        as_postgres(Path::new("/usr/bin/pg_autoctl"), &all, &env);
    }

    fn env(&self) -> Vec<(String, String)> {
        let path = format!("{}:/usr/bin:/bin", postgres_bin().display());
        vec![
            (
                "XDG_CONFIG_HOME".into(),
                self.scratch.dir.join("config").display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                self.scratch.dir.join("share").display().to_string(),
            ),
            ("PATH".into(), path),
        ]
    }

    /// Starts `pg_autoctl run` for `pgdata` in the background.
    fn supervise(&mut self, pgdata: &str) {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "env"]);
        for (key, value) in self.env() {
            command.arg(format!("{key}={value}"));
        }
        let log = std::fs::File::create(format!("{pgdata}.autoctl.log")).expect("a log file");
        let child = command
            .args(["pg_autoctl", "run", "--pgdata", pgdata])
            .current_dir(&self.scratch.dir)
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pg_autoctl run (Debian package pg-auto-failover-cli; .ci/run installs it)");
        self.supervisors.push(child);
    }

    pub fn monitor_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/pg_auto_failover", self.monitor_port)
    }

    /// `(port, reported state, assigned state)` of each node, as the monitor has them.
    pub async fn states(&self) -> Vec<(u16, String, String)> {
        let Ok(monitor) = Database::connect(self.monitor_url()).await else {
            return Vec::new();
        };
        let rows = monitor
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT nodeport, reportedstate::text, goalstate::text FROM pgautofailover.node ORDER BY nodeid",
            ))
            .await
            .unwrap_or_default();
        monitor.close().await.ok();
        rows.iter()
            .filter_map(|row| {
                let port: i32 = row.try_get_by_index(0).ok()?;
                Some((
                    port as u16,
                    row.try_get_by_index(1).ok()?,
                    row.try_get_by_index(2).ok()?,
                ))
            })
            .collect()
    }

    /// The node that is primary now, by asking each node itself.
    pub async fn primary(&self) -> Option<&Node> {
        for node in &self.nodes {
            if in_recovery(node).await == Some(false) {
                return Some(node);
            }
        }
        None
    }

    /// `pg_autoctl perform switchover`: the manager's planned change of primary.
    pub fn switchover(&self) {
        let monitor = self.monitor.to_str().unwrap().to_owned();
        self.autoctl(&["perform", "switchover", "--pgdata", &monitor, "--wait", "60"]);
    }

    /// Polls `ready` every 100 ms until it holds; panics after `limit`.
    pub async fn wait_for<F, Fut>(&self, limit: Duration, what: &str, ready: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        while !ready().await {
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; the monitor says {:?}",
                self.states().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `pg_is_in_recovery()` of `node`, or `None` when it does not answer.
pub async fn in_recovery(node: &Node) -> Option<bool> {
    let db: DatabaseConnection = Database::connect(node.admin_url(DATABASE)).await.ok()?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_is_in_recovery()",
        ))
        .await
        .ok()
        .flatten();
    db.close().await.ok();
    row?.try_get_by_index(0).ok()
}

impl Drop for Formation {
    fn drop(&mut self) {
        let pgdata: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.data.display().to_string())
            .chain(std::iter::once(self.monitor.display().to_string()))
            .collect();
        for data in &pgdata {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--", "env"]);
            for (key, value) in self.env() {
                command.arg(format!("{key}={value}"));
            }
            let _ = command
                .args(["pg_autoctl", "stop", "--pgdata", data, "--fast"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        for child in &mut self.supervisors {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let pg_ctl = postgres_bin().join("pg_ctl");
        for data in &pgdata {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(["stop", "-m", "immediate", "-D", data])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
