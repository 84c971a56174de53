//! The failover drill: a pg_auto_failover formation (a monitor, a primary and its
//! synchronous standby) set up as `deploy/pg_auto_failover/` ships it, the API in
//! front of it as the restricted role with a multi-host `DATABASE_URL` and both nodes
//! as read replicas, and a steady mixed load while the manager does its work. The
//! primary's machine dies mid-load (SIGKILL to its keeper and its postmaster); the
//! WAL archive goes on from the new primary; the old primary's machine comes back and
//! rejoins as a standby; then the manager is asked for a planned switchover. Every
//! write the API acknowledged must be there afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use reqwest::Method;
use sea_orm::Database;
use serde_json::{Value, json};
use service::database::{DatabaseUrl, PoolSettings};
use tests::failover::{Formation, Node};
use tests::{TestApp, TestDatabase, TestUser, fixtures, spawn_app_on};
use uuid::Uuid;

/// What the load saw.
#[derive(Default)]
struct Record {
    /// `(table, id)` of each write answered 2xx, when it was sent and when answered.
    acknowledged: Vec<(&'static str, Uuid, Instant, Instant)>,
    /// When each write answered 503 (the primary was gone, or being changed) was sent.
    writes_refused: Vec<Instant>,
    reads: usize,
    reads_ok: usize,
    /// Each read answered 503: signed in or not, and the problem's detail.
    reads_refused: Vec<String>,
    /// Anything else — a 500, a timeout: must stay empty.
    unexpected: Vec<String>,
}

impl Record {
    /// When the first write sent after `moment` was acknowledged.
    fn first_write_after(&self, moment: Instant) -> Option<Instant> {
        self.acknowledged
            .iter()
            .filter(|(_, _, sent, _)| *sent > moment)
            .map(|(_, _, _, answered)| *answered)
            .min()
    }

    /// From the first to the last refused write, relative to `moment`, in seconds.
    fn refusals_since(&self, moment: Instant) -> Option<(f64, f64)> {
        let since = |at: &Instant| at.saturating_duration_since(moment).as_secs_f64();
        let first = self.writes_refused.iter().min()?;
        let last = self.writes_refused.iter().max()?;
        Some((since(first), since(last)))
    }

    fn writes_after(&self, moment: Instant) -> usize {
        self.acknowledged
            .iter()
            .filter(|(_, _, sent, _)| *sent > moment)
            .count()
    }
}

struct Load {
    record: Arc<Mutex<Record>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// One writer per reader (registrations, reviews, shelf changes) and as many readers
/// (a book, anonymously and signed in), until stopped.
fn start_load(app: &Arc<TestApp>, readers: &[TestUser], books: &[Uuid], round: usize) -> Load {
    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (w, reader) in readers.iter().enumerate() {
        let clones = || {
            (
                app.clone(),
                reader.clone(),
                books.to_vec(),
                record.clone(),
                stop.clone(),
            )
        };
        let (app, reader, books, record, stop) = clones();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let book = books[(n / 3 + round * 11) % books.len()];
                let (method, path, body, table) = match n % 3 {
                    0 => (
                        Method::POST,
                        "/auth/register".to_owned(),
                        json!({"email": format!("load-{round}-{w}-{n}@example.com"),
                               "password": tests::PASSWORD, "display_name": "Load"}),
                        "users",
                    ),
                    // A review whose answer was lost is never retried into a 409: each
                    // (reader, book) pair is tried once per round.
                    1 => (
                        Method::POST,
                        format!("/books/{book}/reviews"),
                        json!({"rating": 4, "body": format!("round {round}, write {n}")}),
                        "reviews",
                    ),
                    _ => (
                        Method::PUT,
                        format!("/me/shelf/{book}"),
                        json!({"status": "reading"}),
                        "shelf_entries",
                    ),
                };
                let token = (table != "users").then_some(reader.token.as_str());
                let sent_at = Instant::now();
                let sent = app
                    .request(method, &path, token)
                    .json(&body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) if response.status().is_success() => {
                        let body: Value = response.json().await.unwrap_or_default();
                        let id = match table {
                            "shelf_entries" => body["book"]["id"].as_str(),
                            _ => body["id"].as_str(),
                        };
                        Ok(id.and_then(|id| id.parse::<Uuid>().ok()))
                    }
                    // 409: a review of this pair committed in an earlier round.
                    Ok(response) if response.status() == 503 || response.status() == 409 => Ok(None),
                    Ok(response) => Err(format!("{path}: {}", response.status())),
                    Err(e) => Err(format!("{path}: {e}")),
                };
                let mut record = record.lock().unwrap();
                match outcome {
                    Ok(Some(id)) => record.acknowledged.push((table, id, sent_at, Instant::now())),
                    Ok(None) => record.writes_refused.push(sent_at),
                    Err(what) => record.unexpected.push(what),
                }
            }
        }));
        let (app, reader, books, record, stop) = clones();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let path = format!("/books/{}", books[n % books.len()]);
                let token = (n % 2 == 0).then_some(reader.token.as_str());
                let sent = app
                    .request(Method::GET, &path, token)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) if response.status().is_success() => Ok(None),
                    Ok(response) if response.status() == 503 => {
                        let problem: Value = response.json().await.unwrap_or_default();
                        let who = if token.is_some() { "signed in" } else { "anonymous" };
                        Ok(Some(format!("{who}: {}", problem["detail"])))
                    }
                    Ok(response) => Err(format!("GET {path}: {}", response.status())),
                    Err(e) => Err(format!("GET {path}: {e}")),
                };
                {
                    let mut record = record.lock().unwrap();
                    record.reads += 1;
                    match outcome {
                        Ok(None) => record.reads_ok += 1,
                        Ok(Some(refused)) => record.reads_refused.push(refused),
                        Err(what) => record.unexpected.push(what),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    Load { record, stop, tasks }
}

impl Load {
    /// Waits (up to `limit`) until `enough` holds of what was recorded.
    async fn until(&self, limit: Duration, what: &str, enough: impl Fn(&Record) -> bool) {
        let deadline = Instant::now() + limit;
        while !enough(&self.record.lock().unwrap()) {
            assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.record).ok().unwrap().into_inner().unwrap()
    }
}

/// Every acknowledged write is on `node` (the primary now).
async fn assert_all_present(node: &Node, database: &str, record: &Record) {
    let db = Database::connect(node.admin_url(database)).await.unwrap();
    for (table, id, _, _) in &record.acknowledged {
        let column = if *table == "shelf_entries" { "book_id" } else { "id" };
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} = '{id}'");
        let count = tests::sql::count(&db, &sql).await;
        assert!(count >= 1, "an acknowledged write to {table} ({id}) was lost");
    }
    db.close().await.ok();
}

/// Reads go on through the drill: at least 99 % answered 2xx.
fn assert_reads_mostly_served(record: &Record) {
    assert!(
        record.reads_ok * 100 >= record.reads * 99,
        "reads: {} of {}; refused: {:?}",
        record.reads_ok,
        record.reads,
        record.reads_refused
    );
}

fn report(phase: &str, record: &Record, since: Instant) {
    let refused = match record.refusals_since(since) {
        Some((first, last)) => format!(
            "{} refused with 503 (sent {first:.2} to {last:.2} s after it)",
            record.writes_refused.len()
        ),
        None => "none refused".to_owned(),
    };
    println!(
        "{phase}: {} writes acknowledged, {refused}; reads {} of {} 2xx ({:.2} %); reads refused: {:?}",
        record.acknowledged.len(),
        record.reads_ok,
        record.reads,
        100.0 * record.reads_ok as f64 / record.reads.max(1) as f64,
        record.reads_refused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_drill_loses_no_acknowledged_write_and_needs_no_restart() {
    let mut formation = Formation::start().await;
    let (node1, node2) = (formation.nodes[0].clone(), formation.nodes[1].clone());
    let database = Arc::new(TestDatabase::create_on(&node1.admin_url("postgres")).await);
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.expect("migrations run as the owner");
    let role = database.create_app_role().await;
    let name = reqwest::Url::parse(&database.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let on = |node: &Node| {
        role.url.replace(
            &format!("127.0.0.1:{}", node1.port),
            &format!("127.0.0.1:{}", node.port),
        )
    };
    let both = format!(
        "{}?target_session_attrs=read-write",
        role.url.replace(
            &format!("127.0.0.1:{}", node1.port),
            &format!("127.0.0.1:{},127.0.0.1:{}", node1.port, node2.port)
        )
    );
    let replicas: Vec<PoolSettings> = [&node1, &node2]
        .into_iter()
        .map(|node| {
            let mut replica = PoolSettings::with_defaults(DatabaseUrl::new(on(node)));
            replica.max_connections = 5;
            replica.min_connections = 0;
            replica
        })
        .collect();
    let app = Arc::new(
        spawn_app_on(&database, |s| {
            s.database.pool.url = DatabaseUrl::new(both.clone());
            s.database.auto_migrate = false;
            s.replicas.pools = replicas;
        })
        .await,
    );
    let author = fixtures::authors(&owner, 1, "Author").await[0];
    let books = fixtures::books(&owner, author, 40).await;
    owner.close().await.ok();
    let mut readers = Vec::new();
    for i in 0..3 {
        readers.push(app.reader(&format!("drill{i}@example.com")).await);
    }

    // 1–3: the primary's machine dies mid-load.
    let load = start_load(&app, &readers, &books, 0);
    load.until(Duration::from_secs(30), "writes before the kill", |r| {
        r.acknowledged.len() >= 20
    })
    .await;
    let killed_at = Instant::now();
    formation.kill_node(&node1);
    load.until(Duration::from_secs(10), "a write acknowledged after the kill", |r| {
        r.first_write_after(killed_at).is_some()
    })
    .await;
    load.until(Duration::from_secs(30), "writes after the failover", |r| {
        r.writes_after(killed_at) >= 20
    })
    .await;
    let record = load.finish().await;
    let recovered = record.first_write_after(killed_at).unwrap() - killed_at;
    report("failover", &record, killed_at);
    println!(
        "failover: writes acknowledged again {:.2} s after the kill",
        recovered.as_secs_f64()
    );
    assert!(record.unexpected.is_empty(), "{:?}", record.unexpected);
    assert!(recovered < Duration::from_secs(10), "{recovered:?}");
    assert_reads_mostly_served(&record);
    let primary = formation.primary().await.expect("a primary after the failover").clone();
    assert_eq!(primary.port, node2.port, "the manager promoted the standby");
    assert_all_present(&primary, &name, &record).await;
    // The archive follows the primary: `check` makes the new primary switch WAL
    // segments and waits until pgBackRest has the segment from it.
    formation.backrest(&["check"]);

    // 4: the old primary's machine comes back; it rejoins as a standby and serves reads.
    formation.restart_node(&node1);
    // Settled, not only node1 back: the manager refuses a switchover (step 5) while
    // the new primary is still in `wait_primary` ("couldn't find the primary node").
    formation
        .wait_for(
            Duration::from_secs(60),
            "node1 back as a secondary, the pair settled",
            || async {
                let states = formation.states().await;
                states
                    .iter()
                    .any(|(port, reported, _)| *port == node1.port && reported == "secondary")
                    && states.iter().any(|(_, reported, _)| reported == "primary")
                    && states.iter().all(|(_, reported, goal)| reported == goal)
            },
        )
        .await;
    let node1_name = format!("127.0.0.1:{}/{name}", node1.port);
    formation
        .wait_for(Duration::from_secs(30), "the API to read from node1 again", || async {
            let ready: Value = app.get("/health/ready").await.json().await.unwrap_or_default();
            ready["replicas"]
                .as_array()
                .is_some_and(|replicas| replicas.iter().any(|r| r["name"] == node1_name && r["state"] == "up"))
        })
        .await;

    // 5: a planned switchover under the same load.
    let load = start_load(&app, &readers, &books, 1);
    load.until(Duration::from_secs(30), "writes before the switchover", |r| {
        r.acknowledged.len() >= 20
    })
    .await;
    let asked_at = Instant::now();
    let formation = tokio::task::spawn_blocking(move || {
        formation.switchover();
        formation
    })
    .await
    .unwrap();
    load.until(Duration::from_secs(30), "writes after the switchover", |r| {
        r.writes_after(asked_at) >= 20
    })
    .await;
    let record = load.finish().await;
    report("switchover", &record, asked_at);
    assert!(record.unexpected.is_empty(), "{:?}", record.unexpected);
    assert_reads_mostly_served(&record);
    let primary = formation
        .primary()
        .await
        .expect("a primary after the switchover")
        .clone();
    assert_eq!(primary.port, node1.port, "the switchover moved the primary back");
    assert_all_present(&primary, &name, &record).await;
    // The test database and role live on the formation: gone before it is.
    drop(app);
    drop(database);
    drop(role);
    drop(formation);
}

/// With the primary stopped and a replica up, everything that does not write goes on:
/// public reads, signed-in reads (the token is checked on the replica), and readiness
/// (200, `degraded`), while a write is a 503 to retry, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_gap_serves_reads_signed_in_or_not_and_refuses_writes() {
    let scratch = tests::cluster::Scratch::new("primary-gone");
    let primary = scratch.init("primary", "wal_level = replica\nmax_wal_senders = 5\n");
    scratch.start(&primary, &[]);
    let standby = scratch.standby_of(&primary, "standby");
    scratch.start(&standby, &[]);
    let database = Arc::new(TestDatabase::create_on(&primary.admin_url()).await);
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let role = database.create_app_role().await;
    let mut replica_url = reqwest::Url::parse(&role.url).unwrap();
    replica_url.set_port(Some(standby.port)).unwrap();
    let app = spawn_app_on(&database, |s| {
        s.database.pool.url = DatabaseUrl::new(role.url.clone());
        s.database.auto_migrate = false;
        s.cache.enabled = false;
        s.replicas.pools = vec![PoolSettings {
            url: DatabaseUrl::new(replica_url.to_string()),
            max_connections: 4,
            min_connections: 0,
            ..s.database.pool.clone()
        }];
    })
    .await;
    let ada = app.reader("ada@example.com").await;
    let author = fixtures::authors(&owner, 1, "Author").await[0];
    let book = fixtures::books(&owner, author, 1).await[0];
    owner.close().await.ok();
    let path = format!("/books/{book}");
    let replica_has_it = || async { app.get(&path).await.status() == 200 };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !replica_has_it().await {
        assert!(Instant::now() < deadline, "the book never reached the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    scratch.stop(&primary);

    assert_eq!(app.get(&path).await.status(), 200, "a public read");
    assert_eq!(app.get_as(&path, &ada.token).await.status(), 200, "a signed-in read");
    let write = app
        .put_json(&format!("/me/shelf/{book}"), &ada.token, json!({"status": "reading"}))
        .await;
    assert_eq!(write.status(), 503, "a write");
    assert!(write.headers().contains_key("retry-after"));
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200, "replicas can serve: not out of rotation");
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["database"], "primary unreachable", "{ready}");
    drop(app);
    drop(role);
    drop(database);
}
