//! Bookworm behind PgBouncer (Debian's 1.18), as production runs it: the API as the
//! restricted role, its connections through the pooler, nothing ignored among the
//! startup parameters but `extra_float_digits`.
//!
//! Session mode works: three instances share a server pool smaller than their combined
//! pools, the session settings (the statement timeout) apply through the pooler, and
//! nothing one client set reaches the next client of the same server connection.
//! Transaction mode does not, with 1.18 and sqlx: the last test shows how it fails.

#![cfg(postgres)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use service::database::{DatabaseUrl, PoolSettings};
use tests::pgbouncer::{PgBouncer, PoolMode};
use tests::sql::scalar;
use tests::{AppRole, Backend, TestApp, TestDatabase, connect_as, spawn_app_on};

/// The shared server the test databases live on, as `host:port`.
fn upstream() -> String {
    let url = reqwest::Url::parse(&std::env::var("TEST_POSTGRES_URL").unwrap()).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
}

fn database_name(url: &str) -> String {
    reqwest::Url::parse(url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned()
}

/// A PgBouncer in front of the shared server, letting in both roles and the admin.
async fn pooler(mode: PoolMode, pool_size: u32, owner: &AppRole, app: &AppRole) -> PgBouncer {
    PgBouncer::start(&upstream(), mode, pool_size, &[&app.name, &owner.name, "postgres"]).await
}

/// A migrated database in the two-role set-up: (database, owner, API role).
async fn production_database() -> (Arc<TestDatabase>, AppRole, AppRole) {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.create_owner_role().await;
    let db = connect_as(&owner.url).await;
    Migrator::up(&db, None).await.expect("the owner migrates");
    db.close().await.ok();
    let app = database.create_app_role_granted_by(&owner).await;
    (Arc::new(database), owner, app)
}

/// An API instance whose connections all go through `bouncer`.
async fn instance_behind(bouncer: &PgBouncer, database: &Arc<TestDatabase>, owner: &AppRole, app: &AppRole) -> TestApp {
    let (app_url, owner_url) = (bouncer.url_for(&app.url), bouncer.url_for(&owner.url));
    spawn_app_on(database, move |s| {
        s.database.pool.url = DatabaseUrl::new(app_url);
        s.database.migration_url = Some(DatabaseUrl::new(owner_url));
        // Session mode ties a server connection to each client connection for its life:
        // an idle pooled connection gives its server connection back only by closing.
        s.database.pool.max_connections = 4;
        s.database.pool.min_connections = 0;
        s.database.pool.idle_timeout = Duration::from_millis(500);
        s.database.pool.connect_timeout = Duration::from_secs(10);
    })
    .await
}

/// A reader's whole visit, every answer a success: register, sign in, list, read a
/// book, review it, shelve it, search, read the review back.
async fn tour(app: &TestApp, who: &str, book: uuid::Uuid) {
    let reader = app.reader(&format!("{who}@example.com")).await;
    for path in [
        "/books?limit=5".to_owned(),
        format!("/books/{book}"),
        "/search/books?q=dune".into(),
    ] {
        let status = app.get_as(&path, &reader.token).await.status();
        assert!(status.is_success(), "{who}: GET {path} answered {status}");
    }
    let review = app.review(&reader.token, book, 5, "Through the pooler").await;
    let shelved = app
        .put_json(
            &format!("/me/shelf/{book}"),
            &reader.token,
            serde_json::json!({ "status": "reading" }),
        )
        .await;
    assert!(
        shelved.status().is_success(),
        "{who}: shelving answered {}",
        shelved.status()
    );
    let read_back = app.send(Method::GET, &format!("/reviews/{review}"), None, None).await;
    assert_eq!(read_back.status(), 200, "{who}: reading the review back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_a_smaller_session_pool_through_pgbouncer() {
    let (database, owner, app_role) = production_database().await;
    let pool_size = 6;
    let bouncer = pooler(PoolMode::Session, pool_size, &owner, &app_role).await;
    let name = database_name(&database.url);
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(instance_behind(&bouncer, &database, &owner, &app_role).await);
    }
    let combined: u32 = 3 * 4;
    assert!(
        combined > pool_size,
        "the instances could ask for more than the pool has"
    );
    let admin = instances[0].admin().await;
    let author = instances[0].create_author(&admin, "Frank Herbert").await;
    let book = instances[0].create_book(&admin, author, "Dune").await;

    // Every instance runs tours at once while the pool is watched.
    let most_servers = Arc::new(AtomicU32::new(0));
    let served = Arc::new(AtomicU32::new(0));
    let watching = tokio::spawn({
        let (most, bouncer_pool, user) = (most_servers.clone(), name.clone(), app_role.name.clone());
        let port = bouncer.port;
        async move {
            loop {
                let pool = tokio::task::spawn_blocking({
                    let db = bouncer_pool.clone();
                    let user = user.clone();
                    move || tests::pgbouncer::pool_on(port, &db, &user)
                })
                .await
                .unwrap();
                most.fetch_max(pool.servers, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let tours = instances.iter().enumerate().map(|(i, instance)| {
        let served = served.clone();
        async move {
            for round in 0..3 {
                tour(instance, &format!("reader-{i}-{round}"), book).await;
                served.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    futures_util::future::join_all(tours).await;
    watching.abort();

    assert_eq!(served.load(Ordering::SeqCst), 9);
    let most = most_servers.load(Ordering::SeqCst);
    assert!(most >= 1, "the tours went through PgBouncer");
    assert!(most <= pool_size, "{most} server connections, the pool has {pool_size}");
    let pool = bouncer.pool(&name, &app_role.name);
    assert!(pool.servers <= pool_size, "{pool:?}");
    println!("pgbouncer: 9 tours through 3 instances; at most {most} of {pool_size} server connections");
}

/// The API's own pool settings, connected through the pooler as the API connects.
async fn api_pool_through(bouncer: &PgBouncer, url: &str, statement_timeout: Duration) -> DatabaseConnection {
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(bouncer.url_for(url)));
    settings.max_connections = 1;
    settings.min_connections = 0;
    settings.statement_timeout = statement_timeout;
    service::database::connect(&settings)
        .await
        .expect("connect through PgBouncer")
}

/// One server connection for every client, so each client gets the connection the
/// previous one used: the statement timeout still applies (it is the client's own
/// `SET`), and the audit actor and RLS user of the previous client's request are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_settings_apply_and_nothing_crosses_between_clients() {
    let (database, owner, app_role) = production_database().await;
    let bouncer = pooler(PoolMode::Session, 1, &owner, &app_role).await;
    let name = database_name(&database.url);

    // A reader's review through an instance whose one connection then closes.
    let app = instance_behind(&bouncer, &database, &owner, &app_role).await;
    let admin = app.admin().await;
    let author = app.create_author(&admin, "Ursula K. Le Guin").await;
    let book = app.create_book(&admin, author, "The Dispossessed").await;
    let reader = app.reader("reader@example.com").await;
    app.review(&reader.token, book, 4, "Anarres").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while bouncer.pool(&name, &app_role.name).clients_active > 0 {
        assert!(Instant::now() < deadline, "the instance kept its connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The next client of the same server connection, with the API's settings.
    let next = api_pool_through(&bouncer, &app_role.url, Duration::from_millis(300)).await;
    assert_eq!(scalar::<String>(&next, "SHOW statement_timeout").await, "300ms");
    let leftover: String = scalar(
        &next,
        "SELECT coalesce(current_setting('app.current_user_id', true), '')",
    )
    .await;
    assert_eq!(leftover, "", "the previous client's actor is gone");
    let err = next
        .execute_unprepared("SELECT pg_sleep(3)")
        .await
        .expect_err("the statement timeout cancels it through the pooler");
    assert!(err.to_string().contains("statement timeout"), "{err}");
    let changed = next
        .execute_unprepared("UPDATE reviews SET body = 'Not mine'")
        .await
        .expect("row-level security hides the rows rather than failing");
    assert_eq!(
        changed.rows_affected(),
        0,
        "the previous client's reader is not this client's"
    );
    let servers = bouncer.pool(&name, &app_role.name).servers;
    assert_eq!(servers, 1, "one server connection served both clients");

    // And the API's own leak check, run through the pooler: the audit log names the
    // reader for the review and nobody for a later anonymous change by the owner.
    let owner_db = api_pool_through(&bouncer, &owner.url, Duration::from_secs(10)).await;
    owner_db
        .execute_unprepared("UPDATE books SET title = 'Owner edit'")
        .await
        .expect("the owner may edit");
    let actors: Vec<String> = {
        let rows = app
            .db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT action || ':' || coalesce(actor_id::text, 'nobody') FROM audit_log \
                 WHERE table_name IN ('reviews', 'books') ORDER BY id",
            ))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get_by_index(0).unwrap()).collect()
    };
    assert_eq!(actors.last().unwrap(), "UPDATE:nobody", "{actors:?}");
    assert!(actors.contains(&format!("INSERT:{}", reader.id)), "{actors:?}");
}

/// Transaction mode hands each transaction whichever server connection is free. sqlx
/// prepares each statement once per connection, by name, and keeps using the name;
/// PgBouncer 1.18 does not follow names across server connections, so the next
/// execution on another one fails. The session's `SET`s stay behind on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_loses_prepared_statements_and_session_settings() {
    let (database, owner, app_role) = production_database().await;
    let bouncer = pooler(PoolMode::Transaction, 2, &owner, &app_role).await;

    let first = api_pool_through(&bouncer, &app_role.url, Duration::from_secs(10)).await;
    let prepared = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT count(*) FROM books WHERE title <> $1",
        ["x".into()],
    );
    first
        .query_one_raw(prepared.clone())
        .await
        .expect("prepared on server connection A");
    // A second client holds connection A in a transaction, so the first gets B.
    let second = api_pool_through(&bouncer, &app_role.url, Duration::from_secs(10)).await;
    let holder = second.begin().await.unwrap();
    holder.execute_unprepared("SELECT 1").await.unwrap();

    let err = first
        .query_one_raw(prepared)
        .await
        .expect_err("the statement's name means nothing on server connection B");
    assert!(err.to_string().contains("prepared statement"), "{err}");
    let timeout: String = scalar(&first, "SHOW statement_timeout").await;
    assert_eq!(timeout, "0", "connection B never ran the session's SET");
    drop(holder);
    drop(database);
}

/// An instance that wants more connections kept open than the pooler has for it: its
/// session settings wait in PgBouncer's queue. Start-up gives up within the connect
/// timeout and says which database, instead of hanging until PgBouncer's own
/// `query_wait_timeout` (two minutes) with nothing in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_gives_up_when_the_pooler_cannot_hold_the_minimum() {
    let (database, owner, app_role) = production_database().await;
    let bouncer = pooler(PoolMode::Session, 1, &owner, &app_role).await;
    let mut settings = tests::test_settings(&bouncer.url_for(&app_role.url));
    settings.database.pool.min_connections = 3;
    settings.database.pool.connect_timeout = Duration::from_secs(1);
    settings.database.auto_migrate = false;

    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), api::startup::Application::build(settings))
        .await
        .expect("start-up gives up by itself");

    let err = result.err().expect("start-up fails").to_string();
    assert!(err.contains("cannot reach the database"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    drop(database);
}
