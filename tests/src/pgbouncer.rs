//! A PgBouncer of the test's own (Debian's package), on a free loopback port in front
//! of a PostgreSQL server, in the pool mode the test asks for. PgBouncer refuses to
//! run as root, so it runs as the `postgres` OS user in a scratch directory, as the
//! clusters do. It lets in, without a password (`auth_type = trust`), the users it is
//! started for, and connects to the server as them.
//!
//! Nothing is ignored among the startup parameters but `extra_float_digits`, which
//! sqlx sends and PgBouncer 1.18 does not know: what a production pooler needs.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::cluster::{Scratch, free_port};

#[derive(Debug, Clone, Copy)]
pub enum PoolMode {
    Session,
    Transaction,
}

pub struct PgBouncer {
    pub port: u16,
    scratch: Scratch,
    child: Child,
}

/// One database's row of `SHOW POOLS`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pool {
    /// Client connections linked to a server connection, and those waiting for one.
    pub clients_active: u32,
    pub clients_waiting: u32,
    /// Server connections open to PostgreSQL, in any state.
    pub servers: u32,
}

fn pgbouncer() -> PathBuf {
    let path = PathBuf::from("/usr/sbin/pgbouncer");
    assert!(path.exists(), "PgBouncer is not installed: apt-get install pgbouncer");
    path
}

impl PgBouncer {
    /// Starts one in front of `upstream` (`host:port`) with `pool_size` server
    /// connections per database and user, letting in `users`, and waits until it answers.
    pub async fn start(upstream: &str, mode: PoolMode, pool_size: u32, users: &[&str]) -> Self {
        let scratch = Scratch::new("pgbouncer");
        let dir = scratch.dir.clone();
        let port = free_port();
        let (host, upstream_port) = upstream.split_once(':').expect("host:port");
        let mode = match mode {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        };
        let userlist: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
        let ini = format!(
            "[databases]\n* = host={host} port={upstream_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {dir}/userlist.txt\n\
             admin_users = postgres\npool_mode = {mode}\ndefault_pool_size = {pool_size}\n\
             max_client_conn = 500\nignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
            dir = dir.display()
        );
        for (name, text) in [("pgbouncer.ini", ini), ("userlist.txt", userlist)] {
            std::fs::write(dir.join(name), text).expect("write PgBouncer's configuration");
        }
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        let child = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pgbouncer())
            .arg(dir.join("pgbouncer.ini"))
            // It writes the same lines to `logfile`; see `log()`.
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        let bouncer = Self { port, scratch, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PgBouncer did not listen: {}", bouncer.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bouncer
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by this PgBouncer's.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = reqwest::Url::parse(url).expect("a URL");
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// `SHOW POOLS` on the admin console: the pool of `user` on `database`.
    pub fn pool(&self, database: &str, user: &str) -> Pool {
        pool_on(self.port, database, user)
    }
}

/// `SHOW POOLS` on the admin console of the PgBouncer on `port`: the pool of `user` on
/// `database` (PgBouncer keeps one per database and user, each `default_pool_size`).
pub fn pool_on(port: u16, database: &str, user: &str) -> Pool {
    let mut psql = Command::new("psql");
    psql.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", "pgbouncer", "-AF", "|", "-P", "footer=off", "-c", "SHOW POOLS"]);
    let output = crate::cluster::succeed(&mut psql, "SHOW POOLS");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('|').collect();
    let mut pool = Pool::default();
    for row in lines.map(|l| l.split('|').collect::<Vec<_>>()) {
        if row.first() != Some(&database) || row.get(1) != Some(&user) {
            continue;
        }
        let n = |column: &str| {
            header
                .iter()
                .position(|h| *h == column)
                .and_then(|i| row.get(i))
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        };
        pool.clients_active += n("cl_active");
        pool.clients_waiting += n("cl_waiting");
        pool.servers += ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
            .iter()
            .map(|c| n(c))
            .sum::<u32>();
    }
    pool
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.scratch.dir.join("pgbouncer.pid")) {
            Command::new("kill").args(["-TERM", pid.trim()]).status().ok();
        }
        self.child.wait().ok();
    }
}
