//! Row-level security, proven as the production API role: a LOGIN role that owns
//! nothing and is neither superuser nor BYPASSRLS, connected directly with SQL.

#![cfg(postgres)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DbBackend, ExecResult, Statement, TransactionTrait};
use serde_json::{Value, json};
use tests::{Backend, TestDatabase, connect_as, fixtures, spawn_app_on, superuser_and_bypassrls};
use uuid::Uuid;

async fn sql<C: ConnectionTrait>(db: &C, sql: &str, values: Vec<sea_orm::Value>) -> Result<ExecResult, sea_orm::DbErr> {
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .await
}

async fn act_as<C: ConnectionTrait>(db: &C, user: Uuid) {
    sql(
        db,
        "SELECT set_config('app.current_user_id', $1, true), set_config('app.current_role', 'user', true)",
        vec![user.to_string().into()],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_reader_cannot_change_anothers_rows_even_with_direct_sql() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let readers = fixtures::readers(&owner, 2).await;
    let (ada, bob) = (readers[0], readers[1]);
    let author = fixtures::authors(&owner, 1, "Author").await[0];
    let book = fixtures::books(&owner, author, 1).await[0];
    let ada_review = fixtures::reviews(&owner, &[ada], &[book], 4).await[0];
    let bob_review = fixtures::reviews(&owner, &[bob], &[book], 2).await[0];
    fixtures::shelve(&owner, bob, &[book], entity::shelf_entry::ShelfStatus::Reading).await;
    let role = database.create_app_role().await;
    let app = connect_as(&role.url).await;

    assert_eq!(
        superuser_and_bypassrls(&app).await,
        (false, false),
        "the app role is neither superuser nor BYPASSRLS"
    );

    // No user set: every write matches nothing (fails closed), but reading works.
    assert_eq!(
        sql(&app, "UPDATE reviews SET body = 'x'", vec![])
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        sql(&app, "DELETE FROM shelf_entries", vec![])
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    let insert = sql(
        &app,
        "INSERT INTO shelf_entries (user_id, book_id, status) VALUES ($1, $2, 'read')",
        vec![ada.into(), book.into()],
    );
    assert!(insert.await.unwrap_err().to_string().contains("row-level security"));
    let visible = app
        .query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT id FROM reviews"))
        .await
        .unwrap();
    assert_eq!(visible.len(), 2);

    // Acting as Ada: Bob's rows stay out of reach, her own are hers to change.
    let txn = app.begin().await.unwrap();
    act_as(&txn, ada).await;
    let touch = [
        ("UPDATE reviews SET body = 'hacked' WHERE id = $1", bob_review),
        ("UPDATE reviews SET deleted_at = now() WHERE id = $1", bob_review),
        ("DELETE FROM shelf_entries WHERE user_id = $1", bob),
        ("UPDATE profiles SET bio = 'hacked' WHERE user_id = $1", bob),
    ];
    for (statement, id) in touch {
        assert_eq!(
            sql(&txn, statement, vec![id.into()]).await.unwrap().rows_affected(),
            0,
            "{statement}"
        );
    }
    let steal = sql(
        &txn,
        "UPDATE reviews SET user_id = $1 WHERE id = $2",
        vec![ada.into(), bob_review.into()],
    )
    .await;
    assert_eq!(steal.unwrap().rows_affected(), 0);
    let soft_delete = sql(
        &txn,
        "UPDATE reviews SET deleted_at = now() WHERE id = $1",
        vec![ada_review.into()],
    )
    .await;
    assert_eq!(
        soft_delete.unwrap().rows_affected(),
        1,
        "soft-deleting her own review works under the policies"
    );
    txn.commit().await.unwrap();

    // After the transaction the setting reads as '' on this connection: still unset.
    assert_eq!(
        sql(&app, "UPDATE reviews SET body = 'x'", vec![])
            .await
            .unwrap()
            .rows_affected(),
        0
    );
    // And the audit log is the trigger's to write, not the role's.
    let forged = sql(
        &app,
        "INSERT INTO audit_log (table_name, record_id, action) VALUES ('books', $1, 'DELETE')",
        vec![book.into()],
    );
    assert!(forged.await.unwrap_err().to_string().contains("permission denied"));
    let bob_row = owner
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT body, deleted_at IS NULL FROM reviews WHERE id = $1",
            [bob_review.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    let (body, live): (String, bool) = (
        bob_row.try_get_by_index(0).unwrap(),
        bob_row.try_get_by_index(1).unwrap(),
    );
    assert_eq!(
        (body.as_str(), live),
        ("Worth reading.", true),
        "Bob's review is untouched"
    );
}

/// What start-up checks before warning a production operator that row-level security
/// protects nothing: true for the superuser the tests connect as, false for the role
/// production runs the API as.
#[tokio::test]
async fn a_role_that_skips_row_security_is_recognised() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    assert!(service::readiness::skips_row_security(&owner).await.unwrap());
    let role = database.create_app_role().await;
    let app = connect_as(&role.url).await;
    assert!(!service::readiness::skips_row_security(&app).await.unwrap());
    app.close().await.ok();
    owner.close().await.ok();
    drop(role);
}

#[tokio::test]
async fn the_api_runs_as_the_restricted_role() {
    let database = std::sync::Arc::new(TestDatabase::create(Backend::Postgres).await);
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.expect("migrations run as the owner");
    let role = database.create_app_role().await;
    let app = spawn_app_on(&database, |s| {
        // The production set-up: serve as the restricted role, migrate as the owner.
        s.database.pool.url = service::database::DatabaseUrl::new(role.url.clone());
        s.database.migration_url = Some(service::database::DatabaseUrl::new(database.url.clone()));
    })
    .await;
    let admin = app.admin().await;
    let ada = app.reader("ada@example.com").await;
    let bob = app.reader("bob@example.com").await;
    let author = fixtures::authors(&owner, 1, "Author").await[0];
    let book = fixtures::books(&owner, author, 1).await[0];

    let review = app.review(&ada.token, book, 5, "Yes").await.to_string();
    let profile = app
        .patch_json("/me/profile", &ada.token, json!({"bio": "Reader."}))
        .await;
    assert_eq!(profile.status(), 200);
    let shelved = app
        .put_json(&format!("/me/shelf/{book}"), &ada.token, json!({"status": "read"}))
        .await;
    assert_eq!(shelved.status(), 201);
    assert_eq!(
        app.delete_as(&format!("/reviews/{review}"), &bob.token).await.status(),
        403
    );
    assert_eq!(
        app.delete_as(&format!("/reviews/{review}"), &ada.token).await.status(),
        204
    );
    let refreshed = app.post_as("/admin/stats/refresh", &admin.token).await;
    assert_eq!(
        refreshed.status(),
        200,
        "a role that owns nothing may still refresh the view"
    );
    let profile = app.get_json(&format!("/users/{}", ada.id)).await;
    assert!(profile["as_of"].is_string(), "the refresh time is readable: {profile}");
    let as_app = connect_as(&role.url).await;
    let forged = sql(
        &as_app,
        "UPDATE user_stats_refreshes SET refreshed_at = now() + interval '1 year'",
        vec![],
    )
    .await;
    assert!(forged.unwrap_err().to_string().contains("permission denied"));
    let log: Value = app
        .get_as(&format!("/admin/audit?record_id={review}"), &admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        2,
        "insert and soft delete, audited as the app role"
    );
    drop(role);
}

async fn scalar<T: sea_orm::TryGetable, C: ConnectionTrait>(db: &C, sql: &str, values: Vec<sea_orm::Value>) -> T {
    db.query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("one row")
        .try_get_by_index(0)
        .unwrap()
}

#[tokio::test]
async fn a_temporary_table_cannot_hide_changes_from_the_audit_log() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let ada = fixtures::readers(&owner, 1).await[0];
    let author = fixtures::authors(&owner, 1, "Author").await[0];
    let book = fixtures::books(&owner, author, 1).await[0];
    let review = fixtures::reviews(&owner, &[ada], &[book], 4).await[0];
    let role = database.create_app_role().await;

    // The documented grants leave the API role no temporary tables at all.
    let app = connect_as(&role.url).await;
    let denied = sql(&app, "CREATE TEMP TABLE audit_log (id bigint)", vec![]).await;
    assert!(
        denied.unwrap_err().to_string().contains("permission denied"),
        "TEMPORARY is revoked"
    );
    app.close().await.unwrap();

    // A deployment that forgot the revoke: the functions themselves must still hold.
    let db_name = scalar::<String, _>(&owner, "SELECT current_database()", vec![]).await;
    sql(
        &owner,
        &format!("GRANT TEMPORARY ON DATABASE \"{db_name}\" TO {}", role.name),
        vec![],
    )
    .await
    .unwrap();
    let app = connect_as(&role.url).await;
    let txn = app.begin().await.unwrap();
    act_as(&txn, ada).await;
    for shadow in [
        "CREATE TEMP TABLE audit_log (id bigint, table_name text, record_id uuid, action text, actor_id uuid, \
         changed_at timestamptz DEFAULT now())",
        "CREATE TEMP TABLE user_stats (user_id uuid)",
        "CREATE FUNCTION pg_temp.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$",
    ] {
        sql(&txn, shadow, vec![])
            .await
            .unwrap_or_else(|e| panic!("{shadow}: {e}"));
    }
    let edited = sql(
        &txn,
        "UPDATE reviews SET body = 'quietly edited' WHERE id = $1",
        vec![review.into()],
    )
    .await
    .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    sql(&txn, "SELECT bookworm_refresh_user_stats()", vec![]).await.unwrap();
    txn.commit().await.unwrap();

    let shadowed: i64 = scalar(&app, "SELECT count(*) FROM pg_temp.audit_log", vec![]).await;
    assert_eq!(shadowed, 0, "nothing went to the shadow table");
    let actor: Option<Uuid> = scalar(
        &owner,
        "SELECT actor_id FROM public.audit_log WHERE record_id = $1 AND action = 'UPDATE'",
        vec![review.into()],
    )
    .await;
    assert_eq!(actor, Some(ada), "the change is in the real log, with its actor");
    let stats: i64 = scalar(
        &owner,
        "SELECT review_count FROM public.user_stats WHERE user_id = $1",
        vec![ada.into()],
    )
    .await;
    assert_eq!(stats, 1, "the refresh reached the real view");
    app.close().await.unwrap();
    drop(role);
}

#[tokio::test]
async fn every_security_definer_function_pins_its_search_path() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let rows = owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT p.proname::text, coalesce(array_to_string(p.proconfig, ';'), '') \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1",
        ))
        .await
        .unwrap();
    let functions: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap()))
        .collect();
    assert!(
        functions.len() >= 4,
        "the audit, refresh and audit upkeep functions are SECURITY DEFINER: {functions:?}"
    );
    for (name, config) in &functions {
        let search_paths: Vec<&str> = config.split(';').filter(|c| c.starts_with("search_path=")).collect();
        assert_eq!(
            search_paths,
            ["search_path=pg_catalog, public, pg_temp"],
            "{name} must search pg_catalog first and pg_temp last"
        );
    }
}

/// A role that existed before migration 22, with the documented default privileges,
/// gets SELECT on the new table from the migration, and no write right.
#[tokio::test]
async fn the_refresh_time_is_read_only_for_an_api_role_that_existed_before_it() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let owner = database.connect().await;
    let all = Migrator::migrations().len() as u32;
    Migrator::up(&owner, Some(all - 1)).await.unwrap();
    let role = database.create_app_role().await;
    Migrator::up(&owner, None).await.unwrap();
    let app = connect_as(&role.url).await;

    let read = sql(&app, "SELECT refreshed_at FROM user_stats_refreshes", vec![]).await;
    let write = sql(&app, "DELETE FROM user_stats_refreshes", vec![]).await;

    assert!(read.is_ok(), "{read:?}");
    assert!(write.unwrap_err().to_string().contains("permission denied"));
}
