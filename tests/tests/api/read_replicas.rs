//! Read replicas on a real streaming replica: a primary and a hot standby of its own
//! (`pg_basebackup -R`), the API serving as the restricted production role on both.
//! Where each statement ran is read from the servers' own statement logs
//! (`log_statement = 'all'`), not from the application's word.
//!
//! The scenarios share one pair and run in order in one test, since pausing replay or
//! stopping the standby would disturb any test running beside them.

#[cfg(postgres)]
use std::path::{Path, PathBuf};
#[cfg(postgres)]
use std::time::{Duration, Instant};

#[cfg(postgres)]
use serde_json::{Value, json};
#[cfg(postgres)]
use tests::TestApp;
use tests::{Backend, backend_tests, spawn_app};

/// The API's read of a malformed token is a 400 on every backend.
async fn a_malformed_consistency_token_is_a_bad_request(backend: Backend) {
    let app = spawn_app(backend).await;

    for bad in ["yesterday", "1/2/3", "ZZ/1", ""] {
        let response = app
            .client
            .get(app.url("/books"))
            .header("x-consistency-token", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad:?}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let fine = app
        .client
        .get(app.url("/books"))
        .header("x-consistency-token", "0/3000148")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200);
}

backend_tests!(a_malformed_consistency_token_is_a_bad_request);

#[cfg(postgres)]
/// A server's log, read from where the last look stopped.
struct Log {
    path: PathBuf,
    seen: u64,
}

#[cfg(postgres)]
impl Log {
    fn new(path: &Path) -> Self {
        let mut log = Self {
            path: path.to_owned(),
            seen: 0,
        };
        log.fresh();
        log
    }

    /// What the server logged since the last call.
    fn fresh(&mut self) -> String {
        let bytes = std::fs::read(&self.path).unwrap_or_default();
        let start = (self.seen as usize).min(bytes.len());
        self.seen = bytes.len() as u64;
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

#[cfg(postgres)]
async fn replica_state(app: &TestApp) -> Value {
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    ready["replicas"][0].clone()
}

#[cfg(postgres)]
/// Waits until the replica is up and has replayed everything.
async fn caught_up(app: &TestApp) {
    // The state must come from a check that began after the caller's last write: one
    // that began before it says "no lag" about a position the write has passed.
    let started = Instant::now();
    loop {
        let state = replica_state(app).await;
        let began_since = state["checked_ms_ago"]
            .as_u64()
            .is_some_and(|ago| u128::from(ago) + 50 < started.elapsed().as_millis());
        if began_since && state["state"] == "up" && state["lag_bytes"] == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica never caught up: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(postgres)]
async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.header("x-consistency-token", token);
    }
    request.send().await.unwrap()
}

#[cfg(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_the_replica_and_a_client_never_misses_its_own_write() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    use service::database::{DatabaseUrl, PoolSettings};
    use tests::TestDatabase;
    use tests::cluster::Scratch;

    let scratch = Scratch::new("replicas");
    let logging = "log_statement = 'all'\nlog_line_prefix = '%m [%p] %d '\n";
    let primary = scratch.init(
        "primary",
        &format!("wal_level = replica\nmax_wal_senders = 5\n{logging}"),
    );
    scratch.start(&primary, &[]);
    let standby = scratch.standby_of(&primary, "standby");
    scratch.start(&standby, &[]);

    let database = std::sync::Arc::new(TestDatabase::create_on(&primary.admin_url()).await);
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let role = database.create_app_role().await;
    let on_standby = |url: &str| {
        let mut url = reqwest::Url::parse(url).unwrap();
        url.set_port(Some(standby.port)).unwrap();
        url.to_string()
    };
    // The API as the restricted role, reading from the standby.
    let on_the_pair = |s: &mut api::config::Settings| {
        s.database.pool.url = DatabaseUrl::new(role.url.clone());
        s.database.auto_migrate = false;
        s.replicas.pools = vec![PoolSettings {
            url: DatabaseUrl::new(on_standby(&role.url)),
            max_connections: 4,
            min_connections: 0,
            ..s.database.pool.clone()
        }];
    };
    let app = tests::spawn_app_on(&database, |s| {
        on_the_pair(s);
        s.replicas.max_lag = Duration::from_millis(1500);
        s.observability.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        // Routing is what is watched here: every read must reach a database.
        s.cache.enabled = false;
    })
    .await;
    let standby_admin = tests::connect_as(&on_standby(&primary.admin_url())).await;
    let admin = app.admin().await;
    let ada = app.reader("ada@example.com").await;
    let author = tests::fixtures::authors(&owner, 1, "Author").await[0];
    let books = tests::fixtures::books(&owner, author, 2).await;
    caught_up(&app).await;
    let mut primary_log = Log::new(&primary.data.with_extension("log"));
    let mut standby_log = Log::new(&standby.data.with_extension("log"));

    // 1. Plain reads run on the replica, writes on the primary.
    for _ in 0..3 {
        assert_eq!(app.get(&format!("/books/{}", books[0])).await.status(), 200);
    }
    assert!(
        standby_log.fresh().matches(&books[0].to_string()).count() >= 3,
        "read on the standby"
    );
    assert!(
        !primary_log.fresh().contains(&books[0].to_string()),
        "not on the primary"
    );
    let posted = app
        .post_json(
            &format!("/books/{}/reviews", books[0]),
            &ada.token,
            json!({"rating": 4, "body": "First."}),
        )
        .await;
    assert_eq!(posted.status(), 201);
    let token = posted.headers()["x-consistency-token"].to_str().unwrap().to_owned();
    assert!(
        primary_log.fresh().contains("INSERT INTO \"reviews\""),
        "the write ran on the primary"
    );

    // 2. Replay paused: the writer's next read (with its token) sees its write; a read
    //    without the token, served by the replica, does not yet.
    caught_up(&app).await;
    standby_admin
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let posted = app
        .post_json(
            &format!("/books/{}/reviews", books[1]),
            &ada.token,
            json!({"rating": 5, "body": "Second, while replay is paused."}),
        )
        .await;
    assert_eq!(posted.status(), 201);
    let token = posted
        .headers()
        .get("x-consistency-token")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or(token);
    let review: Value = posted.json().await.unwrap();
    let review = review["id"].as_str().unwrap().to_owned();
    standby_log.fresh();
    primary_log.fresh();
    assert_eq!(
        get_with(&app, &format!("/reviews/{review}"), Some(&token))
            .await
            .status(),
        200,
        "with its token the client sees its own write"
    );
    assert!(primary_log.fresh().contains(&review), "served by the primary");
    assert_eq!(
        get_with(&app, &format!("/reviews/{review}"), None).await.status(),
        404,
        "without a token the replica answers, not yet having it"
    );
    assert!(standby_log.fresh().contains(&review), "served by the standby");

    // 4. Past the lag limit the replica is skipped, token or not.
    let deadline = Instant::now() + Duration::from_secs(30);
    while replica_state(&app).await["lag_ms"].as_u64().unwrap_or(0) <= 1500 {
        assert!(
            Instant::now() < deadline,
            "the paused replica never fell behind the limit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_with(&app, &format!("/reviews/{review}"), None).await.status(), 200);
    assert!(primary_log.fresh().contains(&review), "a lagging replica is skipped");
    assert!(!standby_log.fresh().contains(&review));
    standby_admin
        .execute_unprepared("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    standby_admin.close().await.ok();
    caught_up(&app).await;

    // 5. Soft deletes hold on replica reads; the app role reads under row-level
    //    security there as on the primary.
    let deleted = app.delete_as(&format!("/books/{}", books[1]), &admin.token).await;
    assert_eq!(deleted.status(), 204);
    caught_up(&app).await;
    standby_log.fresh();
    assert_eq!(app.get(&format!("/books/{}", books[1])).await.status(), 404);
    let reviews: Value = app
        .get(&format!("/users/{}/reviews", ada.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reviews["items"].as_array().unwrap().len(),
        1,
        "the review of the deleted book is hidden"
    );
    let seen = standby_log.fresh();
    assert!(
        seen.contains(&books[1].to_string()) && seen.contains(&ada.id.to_string()),
        "on the standby"
    );

    // 3. The standby stops during a run of reads: every read still succeeds; after a
    //    restart reads go back to it, with no restart of the API.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reads = {
        let (client, url) = (app.client.clone(), app.url(&format!("/books/{}", books[0])));
        let done = done.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..60 {
                statuses.push(client.get(&url).send().await.unwrap().status().as_u16());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            statuses
        })
    };
    // Stopped mid-run: after some reads, with most still to come.
    while done.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    scratch.stop(&standby);
    let statuses = reads.await.unwrap();
    assert!(statuses.iter().all(|s| *s == 200), "every read succeeded: {statuses:?}");
    assert_eq!(replica_state(&app).await["state"], "down");
    let down = format!("bookworm_db_replica_up{{replica=\"127.0.0.1:{}/", standby.port);
    assert!(
        app.scrape()
            .await
            .lines()
            .any(|l| l.starts_with(&down) && l.ends_with(" 0")),
        "the down replica shows in the metrics"
    );
    assert_eq!(
        app.get("/health/ready").await.status(),
        200,
        "a down replica is not unready"
    );
    scratch.start(&standby, &[]);
    caught_up(&app).await;
    let mut standby_log = Log::new(&standby.data.with_extension("log"));
    assert_eq!(app.get(&format!("/books/{}", books[0])).await.status(), 200);
    assert!(
        standby_log.fresh().contains(&books[0].to_string()),
        "back on the replica"
    );

    // 6. With the cache on (a second instance): an entry read from the replica is not
    //    served after a write that changed it, even to a client without the token,
    //    while the replica has not replayed the write: the miss after the write is
    //    loaded where the write is visible.
    let cached = tests::spawn_app_on(&database, |s| {
        on_the_pair(s);
        s.replicas.max_lag = Duration::from_secs(30);
    })
    .await;
    let path = format!("/books/{}", books[0]);
    caught_up(&cached).await;
    let before: Value = cached.get(&path).await.json().await.unwrap();
    assert_eq!(cached.get(&path).await.headers()["x-statement-count"], "0", "cached");
    let standby_admin = tests::connect_as(&on_standby(&primary.admin_url())).await;
    standby_admin
        .execute_unprepared("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let posted = cached
        .post_json(
            &format!("{path}/reviews"),
            &admin.token,
            json!({"rating": 1, "body": "Written while replay is paused."}),
        )
        .await;
    assert_eq!(posted.status(), 201);
    primary_log.fresh();
    let after: Value = cached.get(&path).await.json().await.unwrap();
    assert_eq!(
        after["review_count"].as_i64().unwrap(),
        before["review_count"].as_i64().unwrap() + 1,
        "no stale entry, and no stale replica read in its place"
    );
    assert!(
        primary_log.fresh().contains(&books[0].to_string()),
        "loaded from the primary"
    );
    standby_admin
        .execute_unprepared("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    standby_admin.close().await.ok();

    owner.close().await.ok();
    drop(cached);
    drop(app);
    drop(database);
    drop(role);
}
