//! The `api` binary as an operator meets it: started in an empty directory with no
//! environment, given a bad setting, pointed at a dead database, stopped by SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn api() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
    cmd.env_clear()
        .env("RUST_LOG", "info")
        // No load balancer to wait for; the drain has a test of its own.
        .env("SHUTDOWN_DRAIN_SECS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn finish_within(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("the process was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The lines of a text-format log written at `level` (the word after the timestamp).
fn lines_at<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(level))
        .collect()
}

/// Starts `command` (the API, configured) on a free port, once it answers readiness.
async fn serve(command: &mut Command) -> (Child, u16) {
    let port = free_port();
    let child = command.env("PORT", port.to_string()).spawn().unwrap();
    wait_until_ready(port).await;
    (child, port)
}

/// [`serve`] in `dir`, the output going to a file there: a verbose log fills a pipe
/// nobody reads until exit, and would block the server. Returns the file's path too.
async fn serve_logging_to_file(command: &mut Command, dir: &std::path::Path) -> (Child, u16, std::path::PathBuf) {
    let log_path = dir.join("api.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let (child, port) = serve(
        command
            .current_dir(dir)
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file),
    )
    .await;
    (child, port, log_path)
}

async fn wait_until_ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let mut ready = None;
    for _ in 0..100 {
        if let Ok(response) = reqwest::get(&url).await {
            ready = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, Some(reqwest::StatusCode::OK), "the API did not become ready");
}

fn stop(child: Child) -> Output {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    finish_within(child, Duration::from_secs(10))
}

#[tokio::test]
async fn starts_with_no_setup_creates_the_sqlite_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = serve(api().current_dir(dir.path())).await;
    assert!(dir.path().join("bookworm.db").exists(), "bookworm.db was not created");

    let output = stop(child);
    assert!(
        output.status.success(),
        "exit status {:?}: {}",
        output.status,
        text(&output)
    );
    let log = text(&output);
    assert!(log.contains("migrations are up to date"), "{log}");
    assert!(log.contains("server stopped"), "{log}");
}

/// `api doctor` where nothing has run yet fails on the missing database without
/// creating it; once the server has run there once, it passes, in lines and in JSON.
#[tokio::test]
async fn doctor_fails_before_the_first_start_and_passes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let doctor = |args: &[&str]| {
        let child = api().current_dir(dir.path()).arg("doctor").args(args).spawn().unwrap();
        finish_within(child, Duration::from_secs(30))
    };

    let before = doctor(&[]);
    assert_eq!(before.status.code(), Some(1), "{}", text(&before));
    let lines = String::from_utf8_lossy(&before.stdout).into_owned();
    assert!(
        lines.contains("FAIL  database      no SQLite database at bookworm.db -- fix: "),
        "{lines}"
    );
    assert!(!dir.path().join("bookworm.db").exists(), "the doctor changes nothing");

    let (server, _) = serve(api().current_dir(dir.path())).await;
    stop(server);

    let after = doctor(&[]);
    assert!(after.status.success(), "{}", text(&after));
    let lines = String::from_utf8_lossy(&after.stdout).into_owned();
    assert!(
        lines.lines().any(|l| l.starts_with("ok    migrations    all ")),
        "{lines}"
    );
    assert!(lines.ends_with("all is well\n"), "{lines}");
    let json = doctor(&["--json"]);
    assert!(json.status.success(), "{}", text(&json));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json prints JSON");
    assert_eq!(report["healthy"], true);
    assert_eq!(report["checks"].as_array().unwrap().len(), lines.lines().count() - 1);
}

/// SIGTERM: readiness fails at once, requests are still served for the drain period,
/// then the process exits by itself.
#[tokio::test]
async fn sigterm_fails_readiness_then_serves_through_the_drain_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port) = serve(api().current_dir(dir.path()).env("SHUTDOWN_DRAIN_SECS", "2")).await;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");

    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut ready = reqwest::get(url("/health/ready")).await.unwrap().status();
    while ready != 503 && signalled.elapsed() < Duration::from_secs(1) {
        ready = reqwest::get(url("/health/ready")).await.unwrap().status();
    }
    assert_eq!(ready, 503, "readiness fails as soon as shutdown begins");
    let problem: serde_json::Value = reqwest::get(url("/health/ready")).await.unwrap().json().await.unwrap();
    assert_eq!(problem["detail"], "shutting down");
    let during = reqwest::get(url("/books")).await.unwrap().status();
    assert_eq!(during, 200, "requests are still served during the drain");
    assert!(signalled.elapsed() < Duration::from_secs(2), "checked within the drain");

    let output = finish_within(child, Duration::from_secs(10));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "it served the whole drain"
    );
    let log = text(&output);
    assert!(log.contains("SIGTERM received: reporting not ready"), "{log}");
    assert!(log.contains("server stopped"), "{log}");
}

#[test]
fn a_malformed_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let child = api()
        .current_dir(dir.path())
        .env("DATABASE_MAX_CONNECTIONS", "lots")
        .spawn()
        .unwrap();

    let output = finish_within(child, Duration::from_secs(10));

    assert_eq!(output.status.code(), Some(2));
    let message = text(&output);
    assert!(
        message.contains("invalid setting DATABASE_MAX_CONNECTIONS"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert!(
        !dir.path().join("bookworm.db").exists(),
        "nothing may be created on a bad configuration"
    );
}

#[test]
fn an_unreachable_database_stops_start_up_within_the_connect_timeout() {
    let port = free_port();
    let child = api()
        .env(
            "DATABASE_URL",
            format!("postgres://bookworm:hunter2@127.0.0.1:{port}/bookworm"),
        )
        .env("DATABASE_CONNECT_TIMEOUT_MS", "1000")
        .spawn()
        .unwrap();

    let output = finish_within(child, Duration::from_secs(15));

    assert_eq!(output.status.code(), Some(1));
    let message = text(&output);
    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(!message.contains("hunter2"), "the password leaked: {message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[tokio::test]
async fn passwords_tokens_and_phone_numbers_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, log_path) = serve_logging_to_file(api().env("RUST_LOG", "trace"), dir.path()).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let (password, phone) = ("a very secret passphrase", "+442079460958");

    let registered = client
        .post(format!("{base}/auth/register"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": password, "display_name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let login: serde_json::Value = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let patched = client
        .patch(format!("{base}/me/profile"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"phone": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let failed = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"email": "ada@example.com", "password": "wrong secret passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    assert!(stop(child).status.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("/auth/login"), "requests are logged at all: {log}");
    for secret in [password, "wrong secret passphrase", token.as_str(), phone, "2079460958"] {
        assert!(!log.contains(secret), "{secret:?} appeared in the logs");
    }
}

/// What an operator's log shipper reads: with `LOG_FORMAT=json`, each request is one
/// "request served" object naming its id (the caller's, or a new one when the caller's
/// is malformed), method, target, route, status and latency, and the id the client got
/// back in `x-request-id` is the one logged.
#[tokio::test]
async fn each_request_is_one_json_line_with_its_id_route_status_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, log_path) = serve_logging_to_file(api().env("LOG_FORMAT", "json"), dir.path()).await;
    let client = reqwest::Client::new();
    let missing = "0193a1b2-7c3d-7000-8000-000000000001";
    let get = |id: &'static str| {
        client
            .get(format!("http://127.0.0.1:{port}/books/{missing}"))
            .header("x-request-id", id)
            .header("user-agent", "binary-test")
            .send()
    };
    let kept = get("trace:abc-1").await.unwrap();
    assert_eq!(kept.status(), 404);
    assert_eq!(kept.headers()["x-request-id"], "trace:abc-1");
    let replaced = get("not ok; spaces").await.unwrap();
    let new_id = replaced.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(
        uuid::Uuid::parse_str(&new_id).is_ok(),
        "a malformed id is replaced: {new_id}"
    );

    assert!(stop(child).status.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let served: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .filter(|line: &serde_json::Value| line["fields"]["message"] == "request served")
        .filter(|line| {
            line["span"]["http.target"]
                .as_str()
                .is_some_and(|t| t.starts_with("/books/"))
        })
        .collect();
    assert_eq!(served.len(), 2, "one line per request: {log}");
    for (line, id) in served.iter().zip(["trace:abc-1", new_id.as_str()]) {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["span"]["request_id"], id, "{line}");
        assert_eq!(line["span"]["http.method"], "GET", "{line}");
        assert_eq!(line["span"]["http.target"], format!("/books/{missing}"), "{line}");
        assert_eq!(line["fields"]["http.route"], "/books/{id}", "{line}");
        assert_eq!(line["fields"]["http.status_code"], 404, "{line}");
        assert_eq!(line["fields"]["http.client_ip"], "127.0.0.1", "{line}");
        assert_eq!(line["fields"]["http.user_agent"], "binary-test", "{line}");
        let latency = line["fields"]["latency_ms"].as_f64().unwrap_or(-1.0);
        assert!(latency > 0.0 && latency < 10_000.0, "{line}");
    }
    assert!(
        !log.contains("not ok; spaces"),
        "a malformed id is never logged as sent"
    );
}

#[test]
fn create_admin_creates_then_promotes_and_never_invents_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let run = |email: &str, password: Option<&str>| {
        let mut cmd = api();
        cmd.current_dir(dir.path())
            .args(["create-admin", "--email", email])
            .stdin(Stdio::null());
        if let Some(password) = password {
            cmd.env("BOOKWORM_ADMIN_PASSWORD", password);
        }
        let output = cmd.output().unwrap();
        (output.status.code(), text(&output))
    };

    let (code, out) = run("Root@Example.com", Some("correct horse battery staple"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("created admin account root@example.com"), "{out}");

    let (code, out) = run("root@example.com", None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("root@example.com is now an admin"), "{out}");

    let (code, out) = run("new@example.com", None);
    assert_eq!(code, Some(1), "no password, no new admin: {out}");
    assert!(out.contains("a password is needed"), "{out}");

    let (code, out) = run("other@example.com", Some("short"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("at least 12 characters"), "{out}");
}

/// An outage is the database's fault, not a bug: the operator sees it once per request
/// at WARN, with its cause and the request's id, and never at ERROR (which `docs/errors.md` keeps for 500s).
#[tokio::test]
async fn a_database_outage_is_logged_at_warn_not_error() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("outage.db").display());
    let (child, port) = serve(
        api()
            .env("DATABASE_URL", &url)
            .env("DATABASE_STATEMENT_TIMEOUT_MS", "200"),
    )
    .await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let register = serde_json::json!({
        "email": "ada@example.com", "password": "correct horse battery staple", "display_name": "Ada"
    });
    post_json(&client, format!("{base}/auth/register"), None, register, 201).await;

    // Another process holds SQLite's one write lock past the busy timeout.
    let other = Database::connect(url.as_str()).await.unwrap();
    let lock = other.begin().await.unwrap();
    lock.execute_unprepared("UPDATE users SET role = role").await.unwrap();
    let blocked = client
        .post(format!("{base}/auth/register"))
        .header("x-request-id", "outage-1")
        .json(&serde_json::json!({
            "email": "bob@example.com", "password": "correct horse battery staple", "display_name": "Bob"
        }))
        .send()
        .await
        .unwrap();
    lock.rollback().await.unwrap();

    assert_eq!(blocked.status(), 503);
    let log = text(&stop(child));
    let at = |level: &str| lines_at(&log, level);
    assert!(
        at("WARN").iter().any(|line| line.contains("database unavailable")
            && line.contains("locked")
            && line.contains("request_id=outage-1")),
        "the line names its cause and the request: {log}"
    );
    assert!(at("ERROR").is_empty(), "an outage is not an error: {:?}", at("ERROR"));
}

/// Sends `raw` on a new connection and reads until the server closes it.
fn send_raw(port: u16, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Requests the HTTP parser refuses before the application sees them are a client's
/// mistake: answered 400 or 431 as docs/errors.md says, counted in /metrics, and
/// logged at INFO, never ERROR (ERROR pages someone).
#[tokio::test]
async fn requests_the_http_parser_refuses_are_counted_not_logged_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let (child, port) = serve(
        api()
            .current_dir(dir.path())
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}")),
    )
    .await;
    let many_headers: String = (0..200).map(|i| format!("x-header-{i}: v\r\n")).collect();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "both Content-Length and Transfer-Encoding",
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec(),
            "HTTP/1.1 400 ",
        ),
        (
            "a 64 KiB request line",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(64 * 1024)).into_bytes(),
            "HTTP/1.1 400 ",
        ),
        (
            "200 headers",
            format!("GET /books HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            "HTTP/1.1 431 ",
        ),
        (
            "invalid UTF-8 in the path",
            b"GET /books/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "HTTP/1.1 400 ",
        ),
    ];
    for (what, raw, status_line) in &cases {
        let answer = send_raw(port, raw);
        assert!(answer.starts_with(status_line), "{what}: {answer}");
    }

    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let mut counted = 0.0;
    for _ in 0..100 {
        let scrape = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        counted = scrape
            .lines()
            .filter(|line| line.starts_with("bookworm_http_malformed_requests_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if counted >= cases.len() as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counted, cases.len() as f64, "each refusal is counted once");
    let log = text(&stop(child));
    let at = |level: &str| lines_at(&log, level);
    assert!(
        at("ERROR").is_empty(),
        "client mistakes are not errors: {:?}",
        at("ERROR")
    );
    let refusals = at("INFO")
        .into_iter()
        .filter(|line| line.contains("refused a request the HTTP parser could not read"))
        .count();
    assert_eq!(refusals, cases.len(), "{log}");
}

/// A HAProxy of the test's own (Debian's package) in front of `backends`, health-checking
/// `/health/ready` every 200 ms, with its statistics as CSV on a port of their own.
/// `retries 0`: a request sent to an instance that refuses it fails, so nothing hides a
/// shutdown that drops connections. `timeout check 2s`: without it a check must answer
/// within `inter`, and on a machine busy with other tests a readiness check slower than
/// 200 ms took the one instance left out of rotation during the other's restart (every
/// request then got HAProxy's "No server is available").
struct Haproxy {
    port: u16,
    stats_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(backends: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, stats_port) = (free_port(), free_port());
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server api{i} 127.0.0.1:{p} check\n"))
            .collect();
        let config = format!(
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout check 2s\n  retries 0\n\
             frontend api\n  bind 127.0.0.1:{port}\n  default_backend instances\n\
             backend instances\n  option httpchk GET /health/ready\n  http-check expect status 200\n\
             \x20 default-server inter 200ms fall 1 rise 2\n{servers}\
             listen stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy is installed (apt-get install haproxy)");
        Self {
            port,
            stats_port,
            child,
            _dir: dir,
        }
    }

    /// Each server's status as HAProxy sees it (`UP`, `DOWN`, …), by server name.
    async fn statuses(&self) -> Vec<(String, String)> {
        let url = format!("http://127.0.0.1:{}/stats;csv", self.stats_port);
        let Ok(response) = reqwest::get(&url).await else {
            return Vec::new();
        };
        let csv = response.text().await.unwrap_or_default();
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|row| row.first() == Some(&"instances") && row[1].starts_with("api"))
            .map(|row| (row[1].to_owned(), row[17].to_owned()))
            .collect()
    }

    async fn wait_until(&self, server: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.statuses().await;
            if now.iter().any(|(name, s)| name == server && s.starts_with(status)) {
                return;
            }
            assert!(Instant::now() < deadline, "{server} never became {status}: {now:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Where the instances of the rolling test keep their data: PostgreSQL when
/// `TEST_POSTGRES_URL` names a server (a database of the test's own, dropped after),
/// else one SQLite file both instances open.
struct SharedDatabase {
    url: String,
    drop_with: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl SharedDatabase {
    fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("TEST_POSTGRES_URL") {
            Ok(admin) => {
                let name = format!("bookworm_rolling_{}", std::process::id());
                psql(&admin, &format!("CREATE DATABASE {name}"));
                let (base, _) = admin.rsplit_once('/').expect("a database URL");
                Self {
                    url: format!("{base}/{name}"),
                    drop_with: Some((admin, name)),
                    _dir: dir,
                }
            }
            Err(_) => Self {
                url: format!("sqlite://{}?mode=rwc", dir.path().join("bookworm.db").display()),
                drop_with: None,
                _dir: dir,
            },
        }
    }
}

impl Drop for SharedDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.drop_with {
            psql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .args(["-q", url, "-c", sql])
        .status()
        .expect("psql");
    assert!(status.success(), "{sql}");
}

/// Two instances behind HAProxy under a steady mixed load (reads, and shelf writes by a
/// signed-in reader); each is restarted in turn with SIGTERM. Every request must
/// succeed: the drain takes an instance out of rotation before it stops listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_haproxy_fails_no_request() {
    let database = SharedDatabase::create();
    let ports = [free_port(), free_port()];
    let start = |port: u16| {
        api()
            .env("DATABASE_URL", &database.url)
            .env("PORT", port.to_string())
            .env("SHUTDOWN_DRAIN_SECS", "2")
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap()
    };
    // One after the other: the first applies the migrations, as a deploy's first step.
    let mut instances = Children(Vec::new());
    for port in ports {
        instances.0.push(start(port));
        wait_until_ready(port).await;
    }
    let balancer = Haproxy::start(&ports);
    for server in ["api0", "api1"] {
        balancer.wait_until(server, "UP").await;
    }
    let base = format!("http://127.0.0.1:{}", balancer.port);
    let client = reqwest::Client::new();

    // A reader and a book to shelve, through the balancer.
    let password = "rolling restart password";
    let admin = api()
        .env("DATABASE_URL", &database.url)
        .env("BOOKWORM_ADMIN_PASSWORD", password)
        .args(["create-admin", "--email", "admin@example.com"])
        .output()
        .unwrap();
    assert!(admin.status.success(), "{}", text(&admin));
    let sign_in = |email: &str| {
        let body = serde_json::json!({ "email": email, "password": password });
        post_json(&client, format!("{base}/auth/login"), None, body, 200)
    };
    let admin_token = sign_in("admin@example.com").await["token"].as_str().unwrap().to_owned();
    let author = serde_json::json!({ "name": "Iain M. Banks" });
    let author = post_json(&client, format!("{base}/authors"), Some(&admin_token), author, 201).await;
    let book = serde_json::json!({ "author_id": author["id"], "title": "Excession" });
    let book = post_json(&client, format!("{base}/books"), Some(&admin_token), book, 201).await;
    let book = book["id"].as_str().unwrap().to_owned();
    let register = serde_json::json!({ "email": "reader@example.com", "password": password, "display_name": "Reader" });
    post_json(&client, format!("{base}/auth/register"), None, register, 201).await;
    let reader = sign_in("reader@example.com").await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Steady load from four clients until the restarts are done.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Vec::new())));
    let load: Vec<_> = (0..4)
        .map(|worker| {
            let (client, base, book, reader) = (client.clone(), base.clone(), book.clone(), reader.clone());
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request = match (worker + n) % 4 {
                        0 => client.get(format!("{base}/books?limit=10")),
                        1 => client.get(format!("{base}/books/{book}")),
                        2 => client.get(format!("{base}/me/shelf")).bearer_auth(&reader),
                        _ => {
                            let status = if n.is_multiple_of(2) { "reading" } else { "read" };
                            client
                                .put(format!("{base}/me/shelf/{book}"))
                                .bearer_auth(&reader)
                                .json(&serde_json::json!({ "status": status }))
                        }
                    };
                    sent.fetch_add(1, Ordering::Relaxed);
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {}
                        Ok(response) => {
                            let status = response.status();
                            let body = response.text().await.unwrap_or_default();
                            // The body says who refused: HAProxy or an instance.
                            let body: String = body.chars().take(160).collect();
                            failed.lock().unwrap().push(format!("{status} {body}"));
                        }
                        Err(err) => failed.lock().unwrap().push(err.to_string()),
                    }
                }
            })
        })
        .collect();

    for (i, port) in ports.iter().enumerate() {
        let server = format!("api{i}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        Command::new("kill")
            .args(["-TERM", &instances.0[i].id().to_string()])
            .status()
            .unwrap();
        balancer.wait_until(&server, "DOWN").await;
        // The replacement takes the same port, so it starts once the old one is gone;
        // meanwhile the other instance carries the load.
        let old = instances.0.remove(i);
        let exited = finish_within(old, Duration::from_secs(15));
        assert!(exited.status.success(), "{}", text(&exited));
        instances.0.insert(i, start(*port));
        wait_until_ready(*port).await;
        balancer.wait_until(&server, "UP").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }

    let sent = sent.load(Ordering::Relaxed);
    let failed = failed.lock().unwrap().clone();
    println!("rolling: {sent} requests during two restarts, {} failed", failed.len());
    assert!(sent > 100, "the load ran: {sent} requests");
    assert!(failed.is_empty(), "{} of {sent} failed: {failed:?}", failed.len());
    for instance in std::mem::take(&mut instances.0) {
        stop_child(instance);
    }
}

/// Servers a test started, killed if it ends before stopping them (a failed
/// assertion), so that a failure leaves nothing running on the shared database.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// POSTs `body` (with `token`, if any) and expects `status`; the answer's JSON, or null.
async fn post_json(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: serde_json::Value,
    status: u16,
) -> serde_json::Value {
    let mut request = client.post(&url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let answered = response.status();
    let body = response.text().await.unwrap_or_default();
    // The body tells the balancer's own 503 (no instance up) from an instance's.
    assert_eq!(answered, status, "POST {url}: {body}");
    serde_json::from_str(&body).unwrap_or_default()
}

fn stop_child(child: Child) {
    let output = stop(child);
    assert!(output.status.success(), "{}", text(&output));
}
