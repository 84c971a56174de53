//! A pg_auto_failover formation of the tests' own: a monitor and two data nodes with
//! synchronous replication, on free loopback ports, in a [`Scratch`] directory owned
//! by the `postgres` user, set up with `deploy/pg_auto_failover/apply.sh` and
//! archiving to a pgBackRest repository configured from `deploy/pgbackrest/`, as the
//! reference deployment is. The manager decides and promotes; the tests only kill
//! things, start them again and ask for a switchover, as an operator would.
//!
//! Each `pg_autoctl run` is a supervisor of its own, in its own process group, that
//! starts and stops its PostgreSQL; dropping the [`Formation`] stops them all, pass or
//! fail.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::backrest::{backrest, deploy, shipped_config_with};
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
    /// `pg_autoctl run` of each data directory, the monitor's first.
    supervisors: Vec<(PathBuf, Child)>,
    /// The pgBackRest configuration every node archives with, and its passphrase.
    backrest_config: PathBuf,
    cipher: String,
}

/// The database pg_auto_failover creates on the data nodes for us.
pub const DATABASE: &str = "bookworm";

impl Formation {
    /// A monitor and two nodes, the first primary, the second its synchronous standby.
    pub async fn start() -> Formation {
        let scratch = Scratch::new("failover");
        let monitor_port = free_port();
        let planned: Vec<Node> = ["node1", "node2"]
            .iter()
            .map(|name| Node {
                data: scratch.dir.join(name),
                port: free_port(),
            })
            .collect();
        let repo = scratch.subdir("backrest-repo");
        let logs = scratch.subdir("backrest-log");
        let shared = [
            ("repo1-path", repo.display().to_string()),
            ("log-path", logs.display().to_string()),
            ("lock-path", logs.display().to_string()),
            ("log-level-console", "warn".to_owned()),
        ];
        let pg = |n: usize, node: &Node| {
            [
                (
                    if n == 1 { "pg1-path" } else { "pg2-path" },
                    node.data.display().to_string(),
                ),
                (if n == 1 { "pg1-port" } else { "pg2-port" }, node.port.to_string()),
            ]
        };
        let write = |path: &Path, pgs: Vec<(&str, String)>| {
            let per_host: Vec<(&str, String)> = shared.iter().cloned().chain(pgs).collect();
            std::fs::write(path, shipped_config_with(&per_host)).expect("a pgBackRest configuration");
        };
        // Each node archives with a configuration naming only itself as pg1, as on its
        // own machine; backups and checks run with one naming both.
        for node in &planned {
            write(&backrest_config_of(node), pg(1, node).into());
        }
        let backrest_config = scratch.dir.join("pgbackrest.conf");
        write(
            &backrest_config,
            pg(1, &planned[0]).into_iter().chain(pg(2, &planned[1])).collect(),
        );
        let mut formation = Formation {
            monitor: scratch.dir.join("monitor"),
            scratch,
            monitor_port,
            nodes: Vec::new(),
            supervisors: Vec::new(),
            backrest_config,
            cipher: format!("drill-{}", uuid::Uuid::new_v4().simple()),
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
        formation.apply("monitor", &formation.monitor);
        formation.supervise(&formation.monitor.clone());
        formation
            .wait_for(Duration::from_secs(60), "the monitor", || async {
                Database::connect(formation.monitor_url()).await.is_ok()
            })
            .await;
        for node in planned {
            let name = node.data.file_name().unwrap().to_str().unwrap().to_owned();
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
                &name,
            ]);
            formation.apply("node", &node.data);
            formation.supervise(&node.data);
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
        formation.backrest(&["stanza-create"]);
        formation.backrest(&["check"]);
        formation
    }

    /// `deploy/pg_auto_failover/apply.sh`, as an operator runs it after `pg_autoctl create`.
    fn apply(&self, role: &str, pgdata: &Path) {
        let script = deploy("pg_auto_failover/apply.sh");
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        as_postgres(
            Path::new("/bin/sh"),
            &[script.to_str().unwrap(), role, pgdata.to_str().unwrap()],
            &env,
        );
    }

    /// Runs a pgBackRest command against the formation's repository; returns its output.
    pub fn backrest(&self, args: &[&str]) -> String {
        backrest(&self.backrest_config, &self.cipher, args)
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

    /// Starts `pg_autoctl run` for `pgdata` in the background, in a process group of its own.
    fn supervise(&mut self, pgdata: &Path) {
        let pgdata_text = pgdata.to_str().unwrap();
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "env"]);
        for (key, value) in self.env() {
            command.arg(format!("{key}={value}"));
        }
        // What a data node's archive_command (deploy/pg_auto_failover/node.conf) reads.
        let node = Node {
            data: pgdata.to_owned(),
            port: 0,
        };
        if backrest_config_of(&node).exists() {
            command.arg(format!("PGBACKREST_CONFIG={}", backrest_config_of(&node).display()));
            command.arg(format!("PGBACKREST_REPO1_CIPHER_PASS={}", self.cipher));
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{pgdata_text}.autoctl.log"))
            .expect("a log file");
        let child = command
            .args(["pg_autoctl", "run", "--pgdata", pgdata_text])
            .current_dir(&self.scratch.dir)
            .process_group(0)
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("pg_autoctl run (Debian package pg-auto-failover-cli; .ci/run installs it)");
        self.supervisors.push((pgdata.to_owned(), child));
    }

    /// The whole machine of `node` dies: SIGKILL to its `pg_autoctl run` and everything
    /// in its process group, and to its postmaster (which `pg_ctl` starts in a session of
    /// its own). Killing only the postmaster is not a failover: the keeper restarts
    /// PostgreSQL in place when it can (`timeout.postgresql_restart_failure_*`).
    pub fn kill_node(&mut self, node: &Node) {
        let postmaster = node.postmaster_pid();
        let at = self
            .supervisors
            .iter()
            .position(|(data, _)| *data == node.data)
            .expect("a supervised node");
        let (_, mut child) = self.supervisors.remove(at);
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        if let Some(pid) = postmaster {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = child.wait();
    }

    /// The machine of `node` is back: `pg_autoctl run` again, as systemd would start it.
    /// The keeper asks the monitor what it is now and rejoins (pg_rewind) if it must.
    pub fn restart_node(&mut self, node: &Node) {
        self.supervise(&node.data);
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

/// The pgBackRest configuration `node` archives with: next to its data directory.
fn backrest_config_of(node: &Node) -> PathBuf {
    node.data.with_extension("pgbackrest.conf")
}

/// `pg_is_in_recovery()` of `node`, or `None` when it does not answer.
pub async fn in_recovery(node: &Node) -> Option<bool> {
    let db: DatabaseConnection = Database::connect(node.admin_url(DATABASE)).await.ok()?;
    let in_recovery = crate::sql::try_scalar(&db, "SELECT pg_is_in_recovery()").await;
    db.close().await.ok();
    in_recovery.ok().flatten()
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
        for (_, child) in &mut self.supervisors {
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
