//! The test harness: fresh databases, a real server on a random port, and catalog
//! snapshots. Tests live in `tests/api/`, one module per feature; each is written
//! once as `async fn name(backend: Backend)` and listed in [`backend_tests!`], which
//! runs it on SQLite always and on PostgreSQL when `TEST_POSTGRES_URL` is set.

mod app;
pub mod backrest;
pub mod browser;
pub mod cluster;
mod database;
pub mod failover;
pub mod fixtures;
pub mod pgbouncer;
pub mod redis_server;
pub mod schema;
pub mod sql;

pub use app::{
    PASSWORD, TestApp, TestUser, field_errors, json_of, spawn_app, spawn_app_on, spawn_app_with, test_settings,
};
pub use database::{
    APP_ROLE_PASSWORD, AppRole, Backend, TestDatabase, app_role_grants, connect_as, superuser_and_bypassrls,
};

/// Generates one `#[tokio::test]` per backend for each listed `async fn(Backend)`:
/// `sqlite::name` always, `postgres::name` when the build saw `TEST_POSTGRES_URL`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }

        #[cfg(postgres)]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
