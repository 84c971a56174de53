//! Throwaway PostgreSQL clusters for the tests that need a server of their own: a
//! point-in-time recovery drill stops, restores and restarts one, which the shared
//! server must never go through.
//!
//! Read-replica tests stream from one to another.
//!
//! The PostgreSQL server programs refuse to run as root, so every command runs as the
//! `postgres` OS user (`runuser`), in a directory it owns, on a free loopback port.
//! Dropping a [`Scratch`] stops every cluster started in it and deletes it; when the
//! test failed, the directory stays, with the servers' logs, and its path is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The newest installed PostgreSQL's `bin` directory.
pub fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server packages under /usr/lib/postgresql")
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

/// Runs `program` as the `postgres` OS user with `env`; panics with its output on failure.
pub fn as_postgres(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--", "env"]);
    for (key, value) in env {
        command.arg(format!("{key}={value}"));
    }
    command.arg(program).args(args);
    succeed(&mut command, &format!("{} {args:?}", program.display()))
}

/// Runs `command` to its end; panics, naming it as `what` with its output, unless it
/// succeeded.
pub fn succeed(command: &mut Command, what: &str) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A directory the `postgres` user owns, holding clusters and whatever goes with them.
pub struct Scratch {
    pub dir: PathBuf,
    started: std::sync::Mutex<Vec<PathBuf>>,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("bookworm-{name}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(chown.success(), "chown {} to postgres", dir.display());
        Self {
            dir,
            started: Default::default(),
        }
    }

    /// A directory inside, owned by `postgres` and private to it (as data directories must be).
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        as_postgres(
            Path::new("/bin/mkdir"),
            &["-p", "-m", "0700", path.to_str().unwrap()],
            &[],
        );
        path
    }

    /// `initdb` a new cluster in `name`, listening on a free loopback port only.
    pub fn init(&self, name: &str, settings: &str) -> Cluster {
        let data = self.dir.join(name);
        let bin = postgres_bin();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
            &[],
        );
        let cluster = Cluster {
            data,
            port: free_port(),
            socket_dir: self.dir.clone(),
            bin,
        };
        cluster.configure(&format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n{settings}\n",
            cluster.port,
            cluster.socket_dir.display()
        ));
        cluster
    }

    /// A hot standby of `primary` (which must be running), streaming from it: a base
    /// backup with `pg_basebackup -R`, on a free port of its own. Not started.
    pub fn standby_of(&self, primary: &Cluster, name: &str) -> Cluster {
        let data = self.dir.join(name);
        let port = primary.port.to_string();
        as_postgres(
            &primary.bin.join("pg_basebackup"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
            &[],
        );
        let standby = Cluster {
            data,
            port: free_port(),
            socket_dir: self.dir.clone(),
            bin: primary.bin.clone(),
        };
        standby.configure(&format!("port = {}\nhot_standby = on\n", standby.port));
        standby
    }

    /// A cluster whose data directory something else (a restore) filled in.
    pub fn existing(&self, name: &str, port: u16) -> Cluster {
        Cluster {
            data: self.dir.join(name),
            port,
            socket_dir: self.dir.clone(),
            bin: postgres_bin(),
        }
    }

    /// Starts `cluster` (with `env` for the server and its archive and restore commands)
    /// and waits until it accepts connections.
    pub fn start(&self, cluster: &Cluster, env: &[(&str, &str)]) {
        let log = cluster.data.with_extension("log");
        let port = format!("-p {}", cluster.port);
        as_postgres(
            &cluster.bin.join("pg_ctl"),
            &[
                "start",
                "-w",
                "-t",
                "120",
                "-D",
                cluster.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &port,
            ],
            env,
        );
        self.started.lock().unwrap().push(cluster.data.clone());
    }

    pub fn stop(&self, cluster: &Cluster) {
        as_postgres(
            &cluster.bin.join("pg_ctl"),
            &["stop", "-w", "-m", "fast", "-D", cluster.data.to_str().unwrap()],
            &[],
        );
        self.started.lock().unwrap().retain(|d| d != &cluster.data);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let pg_ctl = postgres_bin().join("pg_ctl");
        for data in self.started.lock().map(|s| s.clone()).unwrap_or_default() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&data)
                .output();
        }
        if std::thread::panicking() {
            eprintln!("the test failed: its servers' logs are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct Cluster {
    pub data: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    bin: PathBuf,
}

impl Cluster {
    /// Appends settings to `postgresql.conf`.
    pub fn configure(&self, settings: &str) {
        use std::io::Write;
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("postgresql.conf");
        conf.write_all(settings.as_bytes()).expect("write postgresql.conf");
    }

    /// The superuser's URL for database `postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}
