//! The migration CLI as an operator runs it, on a SQLite file it creates itself.

use std::path::Path;
use std::process::{Command, Output};

fn migration(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migration"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_default_database_is_the_one_every_program_uses() {
    let help = stdout(&migration(Path::new("."), &["--help"]));
    assert!(help.contains(entity::DEFAULT_DATABASE_URL), "{help}");
}

#[test]
fn the_default_database_in_a_crate_directory_is_called_out_as_every_program_does() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("api")).unwrap();
    std::fs::write(root.path().join("Cargo.toml"), "[workspace]\n").unwrap();
    let crate_dir = root.path().join("api");

    let stderr = String::from_utf8_lossy(&migration(&crate_dir, &["status"]).stderr).into_owned();

    assert!(stderr.contains("warning: DATABASE_URL is unset"), "{stderr}");
    assert!(
        stderr.contains(&root.path().join("bookworm.db").display().to_string()),
        "{stderr}"
    );
    let at_root = String::from_utf8_lossy(&migration(root.path(), &["status"]).stderr).into_owned();
    assert!(!at_root.contains("warning"), "{at_root}");
}

/// The README shows `status` after `up -n 2`: that sample must list every migration
/// this binary knows, in order, as the command prints it.
#[test]
fn the_readmes_status_sample_is_what_status_prints() {
    let readme = include_str!("../../README.md");
    let sample: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "$ cargo run -p migration -- status")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    assert!(migration(dir.path(), &["up", "-n", "2"]).status.success());

    let printed = stdout(&migration(dir.path(), &["status"]));

    assert_eq!(
        sample,
        printed.lines().collect::<Vec<_>>(),
        "update the README's sample"
    );
}

#[test]
fn a_mysql_url_is_refused_by_name() {
    let output = Command::new(env!("CARGO_BIN_EXE_migration"))
        .args(["-u", "mysql://root:hunter2@127.0.0.1/bookworm", "status"])
        .env_clear()
        .output()
        .expect("the CLI runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("MySQL and MariaDB are not supported yet"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn up_status_down_and_reset_on_the_default_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let total = <migration::Migrator as migration::MigratorTrait>::migrations().len();

    let up = migration(dir.path(), &["up", "-n", "2"]);
    assert!(up.status.success(), "{up:?}");
    assert!(
        dir.path().join("bookworm.db").exists(),
        "the default database file is created"
    );

    let status = stdout(&migration(dir.path(), &["status"]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("Applied")).count(),
        2,
        "{status}"
    );
    assert_eq!(
        status.lines().filter(|l| l.starts_with("Pending")).count(),
        total - 2,
        "{status}"
    );

    assert!(migration(dir.path(), &["up"]).status.success());
    assert!(migration(dir.path(), &["fresh"]).status.success());
    assert!(migration(dir.path(), &["fresh"]).status.success());
    assert_eq!(
        stdout(&migration(dir.path(), &["status"]))
            .lines()
            .filter(|l| l.starts_with("Applied"))
            .count(),
        total,
        "fresh applies everything again"
    );
    assert!(migration(dir.path(), &["down"]).status.success());
    let status = stdout(&migration(dir.path(), &["status"]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("Pending")).count(),
        1,
        "{status}"
    );

    assert!(migration(dir.path(), &["refresh"]).status.success());
    assert!(migration(dir.path(), &["reset"]).status.success());
    let status = stdout(&migration(dir.path(), &["status"]));
    assert_eq!(
        status.lines().filter(|l| l.starts_with("Pending")).count(),
        total,
        "{status}"
    );
}

#[test]
fn an_unreachable_database_is_a_one_line_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = migration(
        dir.path(),
        &[
            "-u",
            "postgres://u:topsecret@127.0.0.1:1/x",
            "--connect-timeout-ms",
            "500",
            "status",
        ],
    );

    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: cannot connect to the database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "the password leaked: {stderr}");
}

/// Every command again, on PostgreSQL, where the schema has functions, a materialized
/// view, policies and a schema of its own that a table-only `fresh` left behind.
#[cfg(postgres)]
mod postgres {
    use std::time::{Duration, Instant};

    use sea_orm_migration::sea_orm::{ConnectionTrait, TransactionTrait};
    use tests::schema::snapshot;
    use tests::{Backend, TestDatabase};

    use super::*;

    fn migration_on(database: &TestDatabase, args: &[&str]) -> Output {
        let mut all = vec!["-u", database.url.as_str()];
        all.extend_from_slice(args);
        migration(Path::new("."), &all)
    }

    fn succeeds(database: &TestDatabase, args: &[&str]) -> String {
        let out = migration_on(database, args);
        assert!(
            out.status.success(),
            "migration {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    fn count(status: &str, state: &str) -> usize {
        status.lines().filter(|l| l.starts_with(state)).count()
    }

    #[tokio::test]
    async fn every_command_works_on_postgres() {
        let total = <migration::Migrator as migration::MigratorTrait>::migrations().len();
        let reference = TestDatabase::create(Backend::Postgres).await;
        succeeds(&reference, &["up"]);
        let expected = snapshot(&reference.connect().await).await;

        let database = TestDatabase::create(Backend::Postgres).await;
        succeeds(&database, &["up", "-n", "2"]);
        let status = succeeds(&database, &["status"]);
        assert_eq!(
            (count(&status, "Applied"), count(&status, "Pending")),
            (2, total - 2),
            "{status}"
        );

        succeeds(&database, &["up"]);
        let db = database.connect().await;
        db.execute_unprepared("INSERT INTO authors (id, name) VALUES ('01930000-0000-7000-8000-000000000001', 'Ada')")
            .await
            .unwrap();
        succeeds(&database, &["down"]);
        assert_eq!(count(&succeeds(&database, &["status"]), "Pending"), 1);

        // fresh on a fully migrated database, twice: everything goes, data included,
        // and the schema is a new database's.
        succeeds(&database, &["up"]);
        succeeds(&database, &["fresh"]);
        succeeds(&database, &["fresh"]);
        assert_eq!(snapshot(&db).await, expected, "the schema after fresh");
        let authors = db
            .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT count(*) FROM authors",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(authors.try_get_by_index::<i64>(0).unwrap(), 0, "fresh keeps no data");

        succeeds(&database, &["refresh"]);
        assert_eq!(snapshot(&db).await, expected, "the schema after refresh");
        succeeds(&database, &["reset"]);
        assert_eq!(count(&succeeds(&database, &["status"]), "Pending"), total);
        assert_eq!(snapshot(&db).await, Vec::<String>::new(), "reset leaves nothing");
        succeeds(&database, &["up"]);
        assert_eq!(snapshot(&db).await, expected);
    }

    /// How many migrations come before migration 19 (the text length checks, whose
    /// ALTER TABLE waits for locks and whose validation takes time), and how many from it on.
    fn split_at_text_length_checks() -> (usize, usize) {
        let names: Vec<String> = <migration::Migrator as migration::MigratorTrait>::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let at = names
            .iter()
            .position(|name| name == "m20261204_000019_text_length_checks")
            .expect("migration 19 exists");
        (at, names.len() - at)
    }

    /// A migration that needs a lock held by someone else gives up after the lock
    /// timeout instead of queueing every other query on the table behind it, says
    /// what to do, and applies once the lock is gone.
    #[tokio::test]
    async fn a_migration_waiting_for_a_lock_gives_up_after_the_lock_timeout() {
        let (before, checks_onwards) = split_at_text_length_checks();
        let database = TestDatabase::create(Backend::Postgres).await;
        let before_checks = before.to_string();
        succeeds(&database, &["up", "-n", &before_checks]);

        // A long read, as a report would hold: ACCESS SHARE on authors, which the
        // next migration's ALTER TABLE must wait for.
        let db = database.connect().await;
        let reader = db.begin().await.unwrap();
        reader.execute_unprepared("SELECT count(*) FROM authors").await.unwrap();

        let started = Instant::now();
        let out = migration_on(&database, &["--lock-timeout-ms", "300", "up"]);
        let waited = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("lock timeout"), "{stderr}");
        assert!(stderr.contains("DATABASE_MIGRATION_LOCK_TIMEOUT_MS"), "{stderr}");
        assert!(waited < Duration::from_secs(10), "gave up after {waited:?}");
        assert_eq!(count(&succeeds(&database, &["status"]), "Pending"), checks_onwards);

        reader.rollback().await.unwrap();
        succeeds(&database, &["--lock-timeout-ms", "300", "up"]);
        assert_eq!(count(&succeeds(&database, &["status"]), "Pending"), 0);
    }

    /// Neither the API's short statement timeout nor its log level reach the CLI: a
    /// statement timeout of its own, and no notices.
    #[tokio::test]
    async fn the_cli_runs_with_its_own_statement_timeout_and_no_notices() {
        let database = TestDatabase::create(Backend::Postgres).await;
        let out = Command::new(env!("CARGO_BIN_EXE_migration"))
            .args(["-u", database.url.as_str(), "up"])
            .env_clear()
            .env("DATABASE_STATEMENT_TIMEOUT_MS", "1")
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("already exists"), "{stderr}");

        // Migration 20 validates the length checks, a scan of every author: with
        // 50,000 of them it cannot finish in 1 ms, however fast the machine.
        let (_, checks_onwards) = split_at_text_length_checks();
        let back_through_the_checks = checks_onwards.to_string();
        succeeds(&database, &["down", "-n", &back_through_the_checks]);
        let db = database.connect().await;
        db.execute_unprepared(
            "INSERT INTO authors (id, name) \
             SELECT md5(g::text)::uuid, 'Author ' || g FROM generate_series(1, 50000) AS g",
        )
        .await
        .unwrap();
        let out = migration_on(&database, &["--statement-timeout-ms", "1", "up"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a 1 ms statement timeout applies: {stderr}");
        assert!(stderr.contains("DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS"), "{stderr}");
    }
}
