//! The audit log does not grow forever: monthly partitions on PostgreSQL, made ahead of
//! need and dropped whole when expired; batched deletes on SQLite. Through it all the
//! trigger, the admin endpoint and its pages, and the API role's inability to write
//! the log keep holding.

#[cfg(postgres)]
use chrono::Datelike;
use chrono::{DateTime, Months, Utc};
use migration::{Migrator, MigratorTrait};
#[cfg(postgres)]
use sea_orm::Statement;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use tests::sql::count;
use tests::{Backend, TestDatabase, backend_tests, fixtures, spawn_app};

#[cfg(postgres)]
async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect()
}

fn months_ago(months: u32) -> DateTime<Utc> {
    Utc::now().checked_sub_months(Months::new(months)).unwrap()
}

#[cfg(postgres)]
fn partition(at: DateTime<Utc>) -> String {
    format!("audit_log_y{:04}m{:02}", at.year(), at.month())
}

/// An audit row written straight into the log as the test's superuser, dated `at`.
async fn old_entry(db: &DatabaseConnection, at: DateTime<Utc>) {
    let insert = service::database::raw_statement(
        db.get_database_backend(),
        "INSERT INTO audit_log (table_name, record_id, action, changed_at) VALUES ('books', $1, 'UPDATE', $2)",
        [uuid::Uuid::now_v7().into(), at.into()],
    );
    db.execute_raw(insert).await.unwrap();
}

async fn the_admin_endpoint_pages_through_the_log_across_months(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    for months in [2, 1] {
        old_entry(&app.db, months_ago(months)).await;
    }
    app.reader("ada@example.com").await;

    let seen: Vec<i64> = app
        .walk_pages("/admin/audit?limit=1&table=books", Some(&admin.token))
        .await
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen.len(), 2, "one entry from each old month: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first: {seen:?}");
}

#[tokio::test]
async fn sqlite_deletes_expired_entries_in_batches() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let old = months_ago(14);
    let values: Vec<String> = (0..2_500)
        .map(|_| {
            format!(
                "('books', '{}', 'UPDATE', '{}')",
                uuid::Uuid::now_v7(),
                old.format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            )
        })
        .collect();
    db.execute_unprepared(&format!(
        "INSERT INTO audit_log (table_name, record_id, action, changed_at) VALUES {}",
        values.join(",")
    ))
    .await
    .unwrap();
    old_entry(&db, months_ago(11)).await;
    let reader = fixtures::readers(&db, 1).await;

    let done = service::audit::maintain(&db, 12).await.unwrap();

    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].starts_with("deleted 2500 rows changed before"), "{done:?}");
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit_log").await,
        1 + reader.len() as i64
    );
    assert!(
        service::audit::maintain(&db, 0).await.unwrap().is_empty(),
        "0 keeps everything"
    );
}

backend_tests!(the_admin_endpoint_pages_through_the_log_across_months);

#[cfg(postgres)]
mod postgres_partitions {
    use super::*;
    use tests::{connect_as, spawn_app_on};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_lands_in_its_months_partition_and_the_next_months_are_ready() {
        let app = spawn_app(Backend::Postgres).await;
        let ada = app.reader("ada@example.com").await;

        let home = strings(
            &app.db,
            &format!(
                "SELECT tableoid::regclass::text FROM audit_log WHERE record_id = '{}'",
                ada.id
            ),
        )
        .await;
        assert_eq!(home, [format!("bookworm_audit.{}", partition(Utc::now()))]);
        let partitions = strings(
            &app.db,
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'audit_log'::regclass",
        )
        .await;
        for ahead in 1..=2 {
            let month = Utc::now().checked_add_months(Months::new(ahead)).unwrap();
            assert!(
                partitions.contains(&partition(month)),
                "{} in {partitions:?}",
                partition(month)
            );
        }
        assert!(partitions.contains(&"audit_log_default".to_owned()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_drops_only_whole_months_older_than_the_limit() {
        let database = TestDatabase::create(Backend::Postgres).await;
        let db = database.connect().await;
        Migrator::up(&db, None).await.unwrap();
        service::audit::set_retention(&db, 12).await.unwrap();
        // 14 months ago: no partition yet, so it waits in DEFAULT; 13: expired;
        // 12: the month the limit starts in, kept; now.
        for months in [14, 13, 12, 0] {
            old_entry(&db, months_ago(months)).await;
        }
        db.execute_unprepared("SELECT bookworm_audit_partition((now() - interval '13 months')::date)")
            .await
            .unwrap();
        db.execute_unprepared("SELECT bookworm_audit_partition((now() - interval '12 months')::date)")
            .await
            .unwrap();

        let mut done = service::audit::maintain(&db, 12).await.unwrap();
        done.sort();

        let (p14, p13, p12) = (
            partition(months_ago(14)),
            partition(months_ago(13)),
            partition(months_ago(12)),
        );
        assert!(done.contains(&format!("created {p14}")), "{done:?}");
        assert!(done.contains(&format!("dropped {p14}")), "{done:?}");
        assert!(done.contains(&format!("dropped {p13}")), "{done:?}");
        assert!(!done.contains(&format!("dropped {p12}")), "{done:?}");
        assert_eq!(
            count(&db, "SELECT count(*) FROM audit_log").await,
            2,
            "12 months ago and now"
        );
        assert_eq!(
            count(&db, "SELECT count(*) FROM bookworm_audit.audit_log_default").await,
            0
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE changed_at < now() - interval '13 months'"
            )
            .await,
            0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_running_the_upkeep_together_do_not_collide() {
        let database = TestDatabase::create(Backend::Postgres).await;
        let db = database.connect().await;
        Migrator::up(&db, None).await.unwrap();
        service::audit::set_retention(&db, 0).await.unwrap();
        for months in [5, 6, 7, 8] {
            old_entry(&db, months_ago(months)).await;
        }

        let mut connections = Vec::new();
        for _ in 0..4 {
            connections.push(database.connect().await);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(connections.len()));
        let instances: Vec<_> = connections
            .into_iter()
            .map(|own| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    service::audit::maintain(&own, 0).await
                })
            })
            .collect();
        let mut created = Vec::new();
        for instance in instances {
            created.extend(instance.await.unwrap().expect("no run fails"));
        }

        created.sort();
        let mut expected: Vec<String> = [5, 6, 7, 8]
            .iter()
            .map(|m| format!("created {}", partition(months_ago(*m))))
            .collect();
        expected.sort();
        assert_eq!(created, expected, "each month made once, by one of them");
        assert_eq!(
            count(&db, "SELECT count(*) FROM bookworm_audit.audit_log_default").await,
            0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_api_role_can_neither_write_the_log_nor_change_its_upkeep() {
        let database = std::sync::Arc::new(TestDatabase::create(Backend::Postgres).await);
        let owner = database.connect().await;
        Migrator::up(&owner, None).await.unwrap();
        let role = database.create_app_role().await;
        let app_db = connect_as(&role.url).await;

        for attempt in [
            "INSERT INTO audit_log (table_name, record_id, action) VALUES ('books', gen_random_uuid(), 'DELETE')",
            "INSERT INTO bookworm_audit.audit_log_default (table_name, record_id, action) \
             VALUES ('books', gen_random_uuid(), 'DELETE')",
            "DELETE FROM bookworm_audit.audit_log_default",
            "UPDATE bookworm_audit.settings SET retention_months = 1",
            "SELECT bookworm_audit_partition('2001-01-01')",
        ] {
            let denied = app_db.execute_unprepared(attempt).await;
            assert!(
                denied
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("permission denied")),
                "{attempt}: {denied:?}"
            );
        }
        assert!(
            app_db
                .execute_unprepared("SELECT bookworm_audit_maintain()")
                .await
                .is_ok(),
            "upkeep itself is harmless and open to the API"
        );
        app_db.close().await.ok();

        let served = spawn_app_on(&database, |s| {
            s.database.pool.url = service::database::DatabaseUrl::new(role.url.clone());
            s.database.auto_migrate = false;
        })
        .await;
        let ada = served.reader("ada@example.com").await;
        assert_eq!(
            count(
                &owner,
                &format!("SELECT count(*) FROM audit_log WHERE record_id = '{}'", ada.id)
            )
            .await,
            1,
            "the trigger writes for the API role"
        );
        drop(role);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitioning_keeps_every_row_and_grant_and_undoing_it_too() {
        let database = TestDatabase::create(Backend::Postgres).await;
        let db = database.connect().await;
        let before = Migrator::migrations().len() as u32 - 1;
        Migrator::up(&db, Some(before)).await.unwrap();
        let role = database.create_app_role().await;
        let author = fixtures::authors(&db, 1, "Author").await[0];
        fixtures::books(&db, author, 5).await;
        let rows = "SELECT id::text || table_name || record_id::text || action || changed_at::text \
                    FROM audit_log ORDER BY id";
        let flat = strings(&db, rows).await;
        assert_eq!(flat.len(), 5);
        let privileges = format!(
            "SELECT has_table_privilege('{0}', 'audit_log', 'SELECT')::text || \
                    has_table_privilege('{0}', 'audit_log', 'INSERT')::text",
            role.name
        );
        assert_eq!(strings(&db, &privileges).await, ["truefalse"]);

        Migrator::up(&db, None).await.unwrap();
        assert_eq!(strings(&db, rows).await, flat, "every row, with its id");
        assert_eq!(
            strings(&db, &privileges).await,
            ["truefalse"],
            "the API role's grants carried over"
        );
        fixtures::books(&db, author, 1).await;
        let ids = strings(&db, "SELECT id::text FROM audit_log ORDER BY id").await;
        assert!(
            ids[5].parse::<i64>().unwrap() > ids[4].parse::<i64>().unwrap(),
            "ids keep rising"
        );

        Migrator::down(&db, Some(1)).await.unwrap();
        assert_eq!(
            count(&db, "SELECT count(*) FROM audit_log").await,
            6,
            "down keeps the rows too"
        );
        assert_eq!(strings(&db, &privileges).await, ["truefalse"]);
        drop(role);
    }
}
