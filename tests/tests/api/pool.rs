//! The pool settings reach the real server: what the API's connections report about
//! themselves, and a statement timeout that really cancels a slow query.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use service::database::{DatabaseUrl, Pinned, PoolSettings, Spare, begin_write_as, with_pinned_connections};
use service::replicas::Databases;
use tests::sql::scalar;
use tests::{Backend, TestDatabase, backend_tests, spawn_app, spawn_app_with};

async fn connections_carry_the_configured_session_settings(backend: Backend) {
    let app = spawn_app(backend).await;

    match backend {
        Backend::Postgres => {
            assert_eq!(scalar::<String>(&app.app_db, "SHOW statement_timeout").await, "10s");
            assert_eq!(
                scalar::<String>(&app.app_db, "SHOW idle_in_transaction_session_timeout").await,
                "30s"
            );
            assert_eq!(scalar::<String>(&app.app_db, "SHOW application_name").await, "bookworm");
        }
        Backend::Sqlite => {
            assert_eq!(scalar::<String>(&app.app_db, "PRAGMA journal_mode").await, "wal");
            let foreign_keys: i32 = scalar(&app.app_db, "PRAGMA foreign_keys").await;
            assert_eq!(foreign_keys, 1);
        }
    }
}

async fn the_pool_keeps_its_minimum_of_open_connections(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.database.pool.min_connections = 3;
        s.database.pool.max_connections = 4;
    })
    .await;
    let open = || match backend {
        Backend::Postgres => app.app_db.get_postgres_connection_pool().size(),
        Backend::Sqlite => app.app_db.get_sqlite_connection_pool().size(),
    };
    // The pool opens its minimum in the background: wait for it, within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = open();
    assert!((3..=4).contains(&open), "{open} connections open on {backend}");
}

/// A request's reads share one pooled connection, so sqlx's ping on taking a
/// connection back costs one round trip per request, not one per statement. Temporary
/// tables belong to one connection: three rounds of create-if-missing, insert and
/// count see all three rows only if every statement ran on the same one. Without
/// pinning they spread over the pool's idle connections, oldest first.
async fn a_requests_reads_share_one_pooled_connection(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(database.url.as_str()));
    (settings.min_connections, settings.max_connections) = (3, 3);
    let db = service::database::connect(&settings).await.unwrap();
    // Three connections open and idle, in the order they are handed out.
    match backend {
        Backend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            let held = [pool.acquire().await, pool.acquire().await, pool.acquire().await];
            drop(held);
        }
        Backend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            let held = [pool.acquire().await, pool.acquire().await, pool.acquire().await];
            drop(held);
        }
    }

    let spare = Spare::for_pool(&db);
    let rows = with_pinned_connections(async {
        let pinned = Pinned::new(&db, &spare);
        let mut rows = 0;
        for _ in 0..3 {
            pinned
                .execute_unprepared("CREATE TEMP TABLE IF NOT EXISTS pin_probe (x INTEGER)")
                .await
                .unwrap();
            pinned
                .execute_unprepared("INSERT INTO pin_probe VALUES (1)")
                .await
                .unwrap();
            rows = scalar::<i64>(&pinned, "SELECT count(*) FROM pin_probe").await;
        }
        rows
    })
    .await;
    assert_eq!(rows, 3, "every statement of the request ran on one connection");
    db.close().await.ok();
}

/// A write's transaction runs on the connection the request's reads used, so the
/// request still costs one release ping in all, and at most none: the connection goes
/// back to the request at `COMMIT` and its next read uses it too. A temporary table
/// belongs to one connection: the transaction sees the one the read created, and the
/// read after it sees the row the transaction wrote. Before, the request gave its
/// connection back to sqlx (a ping) and the transaction took the pool's oldest idle one
/// (another ping when it ended), where the table does not exist.
async fn a_requests_write_runs_on_the_connection_its_reads_used(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(database.url.as_str()));
    (settings.min_connections, settings.max_connections) = (3, 3);
    let db = service::database::connect(&settings).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let spare = Spare::for_pool(&db);
    let (in_the_transaction, after) = with_pinned_connections(async {
        let pinned = Pinned::new(&db, &spare);
        pinned
            .execute_unprepared("CREATE TEMP TABLE write_probe (x INTEGER)")
            .await
            .unwrap();
        pinned
            .execute_unprepared("INSERT INTO write_probe VALUES (1)")
            .await
            .unwrap();
        let txn = begin_write_as(&db, None).await.unwrap();
        let in_the_transaction = scalar::<i64>(&txn, "SELECT count(*) FROM write_probe").await;
        txn.execute_unprepared("INSERT INTO write_probe VALUES (2)")
            .await
            .unwrap();
        let _uncached = txn.commit(()).await.unwrap();
        (
            in_the_transaction,
            scalar::<i64>(&pinned, "SELECT count(*) FROM write_probe").await,
        )
    })
    .await;
    assert_eq!(in_the_transaction, 1, "the transaction ran on the read's connection");
    assert_eq!(after, 2, "the read after it ran there too, and saw the commit");
    db.close().await.ok();
}

/// A read gives its request's connection back as soon as its rows are in hand, not
/// when the response has been rendered: with more clients than connections, the
/// time spent on the JSON, its ETag and the middleware after them was time a waiting
/// request could not have the connection. A pool of one: still inside the first
/// request, after its read, a second request's read gets the connection; before, it
/// waited for the first request to end. The first request's next read gets it back.
async fn a_read_gives_its_connection_back_before_its_response_is_rendered(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(database.url.as_str()));
    (settings.min_connections, settings.max_connections) = (1, 1);
    // Long enough that a second request waiting for the connection shows as a
    // timeout below, not as the pool giving up on it.
    settings.connect_timeout = Duration::from_secs(30);
    let db = service::database::connect(&settings).await.unwrap();
    let databases = Databases::new(db.clone(), Vec::new(), Duration::from_secs(1));
    let read_one = async || {
        databases
            .read(None, async |db| Ok(scalar::<i64>(db, "SELECT CAST(1 AS BIGINT)").await))
            .await
            .unwrap()
    };

    with_pinned_connections(async {
        assert_eq!(read_one().await, 1);
        // The first request is rendering its response now.
        let second = tokio::time::timeout(Duration::from_secs(3), with_pinned_connections(read_one())).await;
        assert_eq!(second, Ok(1), "the second request got the pool's one connection");
        assert_eq!(read_one().await, 1, "and the first request got it back");
    })
    .await;
    db.close().await.ok();
}

backend_tests!(
    a_requests_reads_share_one_pooled_connection,
    a_read_gives_its_connection_back_before_its_response_is_rendered,
    a_requests_write_runs_on_the_connection_its_reads_used,
    connections_carry_the_configured_session_settings,
    the_pool_keeps_its_minimum_of_open_connections,
);

#[cfg(postgres)]
#[tokio::test]
async fn postgres_cancels_a_statement_that_outlives_the_statement_timeout() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.pool.statement_timeout = Duration::from_millis(200)
    })
    .await;

    let err = app
        .app_db
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .expect_err("the query is cancelled");

    assert!(err.to_string().contains("statement timeout"), "{err}");
    // The connection is still usable afterwards.
    app.app_db.execute_unprepared("SELECT 1").await.unwrap();
}

/// A pool of `size` connections on a fresh PostgreSQL database, with its spares.
#[cfg(postgres)]
async fn postgres_pool(size: u32) -> (TestDatabase, sea_orm::DatabaseConnection, Spare) {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(database.url.as_str()));
    (settings.min_connections, settings.max_connections) = (size, size);
    let db = service::database::connect(&settings).await.unwrap();
    let spare = Spare::for_pool(&db);
    (database, db, spare)
}

/// One request: the backend process that served `sql`, and what it returned.
#[cfg(postgres)]
async fn request_reading(db: &sea_orm::DatabaseConnection, spare: &Spare, sql: &str) -> (i32, i64) {
    with_pinned_connections(async {
        let pinned = Pinned::new(db, spare);
        let pid = scalar::<i32>(&pinned, "SELECT pg_backend_pid()").await;
        (pid, scalar::<i64>(&pinned, sql).await)
    })
    .await
}

/// Waits (within 10 s) until `spare` keeps nothing and the pool's `size` connections
/// are all idle in it; then what is kept and what is idle.
#[cfg(postgres)]
async fn all_back_in_the_pool(db: &sea_orm::DatabaseConnection, spare: &Spare, size: usize) -> (usize, usize) {
    let pool = db.get_postgres_connection_pool();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (spare.kept() > 0 || pool.num_idle() < size) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (spare.kept(), pool.num_idle())
}

/// The next request takes the connection the last one finished with, without sqlx's
/// release ping. Without the spare it would get the pool's oldest idle connection.
#[cfg(postgres)]
#[tokio::test]
async fn the_next_request_takes_the_connection_the_last_one_finished_with() {
    let (_database, db, spare) = postgres_pool(3).await;
    let (first, _) = request_reading(&db, &spare, "SELECT 1::bigint").await;
    assert_eq!(spare.kept(), 1, "a clean connection is kept");
    for _ in 0..5 {
        let (next, _) = request_reading(&db, &spare, "SELECT 1::bigint").await;
        assert_eq!(next, first, "every request ran on the connection the last one left");
    }
    db.close().await.ok();
}

/// A kept connection goes back to sqlx a moment after the last request, so an idle
/// instance holds nothing back from the pool (and closing it does not wait).
#[cfg(postgres)]
#[tokio::test]
async fn an_idle_instance_gives_its_kept_connections_back_to_the_pool() {
    let (_database, db, spare) = postgres_pool(3).await;
    request_reading(&db, &spare, "SELECT 1::bigint").await;
    assert_eq!(spare.kept(), 1);
    assert_eq!(
        all_back_in_the_pool(&db, &spare, 3).await,
        (0, 3),
        "kept, idle in the pool"
    );
    tokio::time::timeout(Duration::from_secs(5), db.close())
        .await
        .expect("the pool closes")
        .ok();
}

/// A request dropped during a statement leaves its connection mid-protocol. It is
/// closed, not kept and not given back to sqlx: sqlx's release ping waits for what the
/// statement left on the wire, and when that is an error it never finishes, so the
/// connection (and its place in the pool) would be lost for good.
#[cfg(postgres)]
#[tokio::test]
async fn a_request_cancelled_mid_statement_does_not_cost_the_pool_a_connection() {
    let (_database, db, spare) = postgres_pool(2).await;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        request_reading(&db, &spare, "SELECT pg_sleep(1)::text::bigint"),
    )
    .await;
    assert!(cancelled.is_err(), "the request was cancelled");
    assert_eq!(spare.kept(), 0, "nothing kept");
    for round in 0..4_i64 {
        let (_, answer) = request_reading(&db, &spare, &format!("SELECT {round}::bigint")).await;
        assert_eq!(answer, round, "each request reads its own answer");
    }
    assert_eq!(
        all_back_in_the_pool(&db, &spare, 2).await,
        (0, 2),
        "both connections are back in the pool, idle"
    );
    db.close().await.ok();
}

/// After the pool moves to another primary, nothing from before is kept or taken.
#[cfg(postgres)]
#[tokio::test]
async fn a_connection_from_before_the_primary_moved_is_not_kept() {
    let (_database, db, spare) = postgres_pool(3).await;
    request_reading(&db, &spare, "SELECT 1::bigint").await;
    assert_eq!(spare.kept(), 1);
    spare.primary_changed();
    assert_eq!(spare.kept(), 0, "what was kept is discarded");
    with_pinned_connections(async {
        scalar::<i32>(&Pinned::new(&db, &spare), "SELECT 1").await;
        spare.primary_changed();
    })
    .await;
    assert_eq!(spare.kept(), 0, "a connection checked out before the move is not kept");
    db.close().await.ok();
}

/// A request's write transaction does not begin on the request's connection once the
/// pool has lost its primary or moved since the request took it: it takes one from the
/// pool, through sqlx's `before_acquire` check, which waits for the new primary.
#[cfg(postgres)]
#[tokio::test]
async fn a_write_does_not_begin_on_a_connection_from_before_the_primary_was_lost() {
    let (_database, db, spare) = postgres_pool(3).await;
    let (read_on, written_on) = with_pinned_connections(async {
        let read_on = scalar::<i32>(&Pinned::new(&db, &spare), "SELECT pg_backend_pid()").await;
        spare.primary_changed();
        let txn = begin_write_as(&db, None).await.unwrap();
        let written_on = scalar::<i32>(&txn, "SELECT pg_backend_pid()").await;
        let _uncached = txn.commit(()).await.unwrap();
        (read_on, written_on)
    })
    .await;
    assert_ne!(read_on, written_on, "the write took another connection");
    db.close().await.ok();
}

/// A write's transaction dropped before it commits — its request was cancelled, or a
/// statement failed and `?` returned — is rolled back, between statements or in the
/// middle of one, and the pool keeps all its connections, none left in a transaction.
#[cfg(postgres)]
#[tokio::test]
async fn a_write_dropped_before_its_commit_is_rolled_back_and_its_connection_recovered() {
    let (database, db, spare) = postgres_pool(2).await;
    db.execute_unprepared("CREATE TABLE dropped_writes (x INTEGER)")
        .await
        .unwrap();
    // Between statements.
    with_pinned_connections(async {
        scalar::<i32>(&Pinned::new(&db, &spare), "SELECT 1").await;
        let txn = begin_write_as(&db, None).await.unwrap();
        txn.execute_unprepared("INSERT INTO dropped_writes VALUES (1)")
            .await
            .unwrap();
    })
    .await;
    // In the middle of a statement.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        with_pinned_connections(async {
            let txn = begin_write_as(&db, None).await.unwrap();
            txn.execute_unprepared("INSERT INTO dropped_writes VALUES (2)")
                .await
                .unwrap();
            txn.execute_unprepared("SELECT pg_sleep(1)").await.unwrap();
        }),
    )
    .await;
    assert!(cancelled.is_err(), "the second write was cancelled");
    // The server ends the cancelled one's session when its sleep ends.
    let observer = database.connect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let in_transaction = loop {
        let open: i64 = scalar(
            &observer,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name = 'bookworm' AND state LIKE '%in transaction%'",
        )
        .await;
        if open == 0 || std::time::Instant::now() > deadline {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(in_transaction, 0, "no connection is left in a transaction");
    for round in 1..=4 {
        with_pinned_connections(async {
            let txn = begin_write_as(&db, None).await.unwrap();
            txn.execute_unprepared("INSERT INTO dropped_writes VALUES (10)")
                .await
                .unwrap();
            let _uncached = txn.commit(()).await.unwrap();
        })
        .await;
        let rows: Vec<i64> = vec![
            scalar(&observer, "SELECT count(*) FROM dropped_writes WHERE x < 10").await,
            scalar(&observer, "SELECT count(*) FROM dropped_writes WHERE x = 10").await,
        ];
        assert_eq!(rows, [0, round], "round {round}: only the committed writes are there");
    }
    assert_eq!(
        all_back_in_the_pool(&db, &spare, 2).await.1,
        2,
        "both connections are idle in the pool"
    );
    observer.close().await.ok();
    db.close().await.ok();
}

/// While requests keep the pool exhausted, waiters that go to sqlx directly
/// (background work, a write begun outside a request) still get connections: one clean connection in
/// eight goes back to sqlx instead of to our waiting requests. Handing every one over
/// would starve them until sqlx's acquire timeout.
#[cfg(postgres)]
#[tokio::test]
async fn requests_that_exhaust_the_pool_do_not_starve_its_other_waiters() {
    let (_database, db, spare) = postgres_pool(2).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (db, spare, stop) = (db.clone(), spare.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            let mut served = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                request_reading(&db, &spare, "SELECT 1::bigint").await;
                served += 1;
            }
            served
        }));
    }
    let pool = db.get_postgres_connection_pool();
    for round in 0..20 {
        let started = std::time::Instant::now();
        let conn = pool.acquire().await;
        assert!(
            conn.is_ok(),
            "round {round}: a direct waiter got no connection in {:?}",
            started.elapsed()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.await.unwrap() > 0, "every reader was served too");
    }
    db.close().await.ok();
}

/// A pool of one connection, which background work took from sqlx directly, and a
/// request waiting for it.
#[cfg(postgres)]
struct BackgroundHoldsThePool {
    _database: TestDatabase,
    db: sea_orm::DatabaseConnection,
    spare: Spare,
    background: sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>,
    request: tokio::task::JoinHandle<(i32, i64)>,
}

#[cfg(postgres)]
impl BackgroundHoldsThePool {
    /// The background work gives its connection back to sqlx: what the waiting request
    /// read once it got a connection (within 5 s).
    async fn background_work_ends(self) -> i64 {
        drop(self.background);
        let (_, read) = tokio::time::timeout(Duration::from_secs(5), self.request)
            .await
            .expect("the waiting request got a connection within 5 s")
            .unwrap();
        self.db.close().await.ok();
        read
    }
}

#[cfg(postgres)]
async fn a_request_waits_while_background_work_holds_the_pool() -> BackgroundHoldsThePool {
    let (_database, db, spare) = postgres_pool(1).await;
    let background = db.get_postgres_connection_pool().acquire().await.unwrap();
    let request = tokio::spawn({
        let (db, spare) = (db.clone(), spare.clone());
        async move { request_reading(&db, &spare, "SELECT 7::bigint").await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while spare.waiting() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        !request.is_finished(),
        "the request waits while the pool's one connection is out"
    );
    assert_eq!(spare.waiting(), 1, "for a hand-over");
    BackgroundHoldsThePool {
        _database,
        db,
        spare,
        background,
        request,
    }
}

/// A request waiting for a connection waits for a finishing request to hand it one, in
/// Bookworm's queue, not in sqlx's. A connection that goes back to sqlx some other way
/// (here background work, which took it from sqlx directly) still reaches it: the
/// request joins sqlx's queue after a short wait. Without that, with no other request
/// to finish, it would wait until its client gave up.
#[cfg(postgres)]
#[tokio::test]
async fn a_waiting_request_gets_a_connection_that_went_back_to_sqlx() {
    let waiting = a_request_waits_while_background_work_holds_the_pool().await;
    assert_eq!(waiting.background_work_ends().await, 7);
}

/// When the pool loses its primary or moves, the requests waiting for a hand-over are
/// sent to sqlx's queue, whose check waits for the new primary: none waits on for a
/// connection to the former primary to be handed over.
#[cfg(postgres)]
#[tokio::test]
async fn requests_waiting_when_the_primary_moves_wait_in_sqlxs_queue() {
    let waiting = a_request_waits_while_background_work_holds_the_pool().await;
    waiting.spare.primary_changed();
    assert_eq!(waiting.spare.waiting(), 0, "nobody waits for a hand-over any more");
    assert_eq!(waiting.background_work_ends().await, 7);
}

/// Requests that wait for a connection are served in the order they came, however
/// the connection reaches them: handed over by a request that finished, or through
/// sqlx's queue. 32 clients send 60 requests each through a pool of 4, on one thread
/// (across threads a finishing request prefers a waiter on its own); each request
/// notes when it started and when PostgreSQL ran its statement. One overtaken by many
/// that started after it waited in a queue they skipped: before every waiting request
/// joined one queue, a request that found the pool a moment short of exhausted waited
/// in sqlx's queue alone, overtaken by up to 70 (p99) here.
#[cfg(postgres)]
#[tokio::test]
async fn requests_waiting_for_a_connection_are_served_in_the_order_they_came() {
    const CLIENTS: usize = 32;
    const POOL: usize = 4;
    let (_database, db, spare) = postgres_pool(POOL as u32).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (db, spare) = (db.clone(), spare.clone());
        clients.push(tokio::spawn(async move {
            let mut requests = Vec::new();
            for _ in 0..60 {
                let started = std::time::Instant::now();
                let ran_at = with_pinned_connections(async {
                    let pinned = Pinned::new(&db, &spare);
                    scalar::<i64>(
                        &pinned,
                        "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
                    )
                    .await
                })
                .await;
                requests.push((started, ran_at));
            }
            requests
        }));
    }
    let mut requests = Vec::new();
    for client in clients {
        requests.extend(client.await.unwrap());
    }
    requests.sort_by_key(|&(started, _)| started);
    // How many requests that started after each one ran before it.
    let overtaken: Vec<usize> = requests
        .iter()
        .enumerate()
        .map(|(i, &(_, ran_at))| requests[i + 1..].iter().filter(|&&(_, later)| later < ran_at).count())
        .collect();
    let mut sorted = overtaken.clone();
    sorted.sort_unstable();
    let (p99, max) = (sorted[sorted.len() * 99 / 100], sorted[sorted.len() - 1]);
    eprintln!("overtaken: p50 {}, p99 {p99}, max {max}", sorted[sorted.len() / 2]);
    // Statements on different connections run side by side, so a few overtakes are
    // the pool's width, not a queue jumped.
    assert!(
        p99 <= 2 * POOL,
        "p99 of requests overtaken by later ones: {p99} (max {max})"
    );
    db.close().await.ok();
}
