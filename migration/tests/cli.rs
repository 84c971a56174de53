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
