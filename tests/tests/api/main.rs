//! Black-box tests of the whole stack: one binary, one module per feature.

mod account_security;
mod accounts;
mod admin_users;
mod audit;
mod audit_lifecycle;
mod backups;
mod catalogue;
mod constraints;
mod doctor;
#[cfg(postgres)]
mod failover;
mod health;
mod hostile_input;
mod indexes;
mod metrics;
mod migrations;
mod no_n_plus_one;
mod openapi;
mod operator_commands;
mod outages;
mod pgbouncer;
mod point_in_time;
mod pool;
mod read_replicas;
mod readme;
mod reviews_and_shelves;
mod row_level_security;
mod search;
mod seed;
mod shared_cache;
mod sqlite_plans;
mod startup;
mod stats;
mod write_invalidation;

/// Says, once, in the list of tests run, that the PostgreSQL variant of every database
/// test was not built (set `TEST_POSTGRES_URL` to build and run them), and checks that
/// this build matches the environment it runs in.
#[cfg(not(postgres))]
#[test]
fn postgres_tests_were_not_requested_set_test_postgres_url_to_run_them() {
    let url = std::env::var("TEST_POSTGRES_URL").unwrap_or_default();
    assert!(
        url.trim().is_empty(),
        "TEST_POSTGRES_URL is set, but these tests were built without it"
    );
}
