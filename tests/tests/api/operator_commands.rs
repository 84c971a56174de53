//! The operator commands in the documented two-role production set-up
//! (docs/operations.md): `api create-admin` serving as the restricted role and
//! migrating as the owner; the seed tool as the owner, who is bound by the FORCE'd
//! row-level security policies like everyone but superusers. And what create-admin
//! says when the owner's URL was left out.

#![cfg(postgres)]

use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use service::accounts::AdminBootstrap;
use service::database::DatabaseUrl;
use tests::sql::count;
use tests::{AppRole, Backend, PASSWORD, TestDatabase, connect_as, superuser_and_bypassrls, test_settings};

/// The production set-up: a database its owner migrated but for the latest migration,
/// and the API's restricted role. Fields drop in order: the database after its roles.
struct TwoRoles {
    owner: DatabaseConnection,
    app_role: AppRole,
    owner_role: AppRole,
    _database: TestDatabase,
}

impl TwoRoles {
    async fn with_the_latest_migration_pending() -> Self {
        let database = TestDatabase::create(Backend::Postgres).await;
        let owner_role = database.create_owner_role().await;
        let owner = connect_as(&owner_role.url).await;
        let all = Migrator::migrations().len() as u32;
        Migrator::up(&owner, Some(all - 1))
            .await
            .expect("the owner can migrate");
        let app_role = database.create_app_role().await;
        TwoRoles {
            owner,
            app_role,
            owner_role,
            _database: database,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_and_seed_work_as_the_production_roles() {
    let roles = TwoRoles::with_the_latest_migration_pending().await;
    let owner = &roles.owner;

    // create-admin: DATABASE_URL is the restricted role, DATABASE_MIGRATION_URL the owner,
    // with the latest migration still to apply.
    let mut settings = test_settings(&roles.app_role.url);
    settings.database.migration_url = Some(DatabaseUrl::new(roles.owner_role.url.clone()));
    let created = api::commands::create_admin(&settings, "root@example.com", Some(PASSWORD.into())).await;
    assert!(matches!(created, Ok((AdminBootstrap::Created, _))), "{created:?}");
    let again = api::commands::create_admin(&settings, "root@example.com", None).await;
    assert!(matches!(again, Ok((AdminBootstrap::Promoted, _))), "{again:?}");
    let pending = Migrator::get_pending_migrations(owner).await.unwrap();
    assert!(pending.is_empty(), "create-admin migrated as the owner");
    assert_eq!(count(owner, "SELECT count(*) FROM users WHERE role = 'admin'").await, 1);

    // seed, as the owner (not a superuser): the policies on reviews, shelves and
    // profiles bind it too.
    let config = seed::SeedConfig {
        authors: 3,
        books_per_author: 2,
        users: 4,
        reviews_per_user: 2,
        category_depth: 2,
        seed: 1,
        demo_logins: false,
    };
    let report = seed::run(owner, &config).await.expect("the owner can seed");
    assert_eq!(report.reviews, 8);
    assert_eq!(count(owner, "SELECT count(*) FROM reviews").await, 8);
    assert_eq!(count(owner, "SELECT count(*) FROM profiles").await, 5);
    assert_eq!(
        superuser_and_bypassrls(owner).await,
        (false, false),
        "no shortcut through privileges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_as_the_restricted_role_alone_says_which_setting_is_missing() {
    let roles = TwoRoles::with_the_latest_migration_pending().await;
    let owner = &roles.owner;

    // DATABASE_MIGRATION_URL forgotten: the pending migration runs as the restricted
    // role, which may not change the schema.
    let settings = test_settings(&roles.app_role.url);
    let refused = api::commands::create_admin(&settings, "root@example.com", Some(PASSWORD.into()))
        .await
        .expect_err("the restricted role cannot migrate");
    assert!(
        refused.contains("set DATABASE_MIGRATION_URL to the schema owner's URL"),
        "the error names the missing setting: {refused}"
    );
    let pending = Migrator::get_pending_migrations(owner).await.unwrap();
    assert_eq!(pending.len(), 1, "nothing was applied");
    assert_eq!(
        count(owner, "SELECT count(*) FROM users").await,
        0,
        "no account was made"
    );
}
