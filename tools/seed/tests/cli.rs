//! The seed binary as a newcomer runs it, on an SQLite file of its own.

use std::path::Path;
use std::process::{Command, Output};

use migration::{Migrator, MigratorTrait};
use sea_orm::Database;

fn seed(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seed"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the seed tool runs")
}

async fn migrated_database(dir: &Path) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bookworm.db").display());
    let db = Database::connect(url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db.close().await.unwrap();
}

const SMALL: &[&str] = &["--authors", "3", "--books-per-author", "2", "--users", "4", "--demo"];

#[tokio::test]
async fn seeding_twice_says_what_to_do_instead_of_a_raw_unique_error() {
    let dir = tempfile::tempdir().unwrap();
    migrated_database(dir.path()).await;

    let first = seed(dir.path(), SMALL, &[]);
    let second = seed(dir.path(), SMALL, &[]);

    let (out, err) = (
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
    );
    assert!(first.status.success(), "{err}");
    assert!(
        out.contains("demo logins") && out.contains(seed::DEMO_PASSWORD),
        "{out}"
    );
    assert!(
        err.contains("  books 6/6"),
        "plain progress lines when not on a terminal: {err}"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(err.contains("already holds rows"), "{err}");
    assert!(err.contains("cargo run -p migration -- fresh"), "{err}");
}

#[test]
fn an_unmigrated_database_is_named_as_the_cause() {
    let dir = tempfile::tempdir().unwrap();

    let out = seed(dir.path(), SMALL, &[]);

    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cargo run -p migration -- up"), "{err}");
}

#[test]
fn demo_logins_are_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();

    let out = seed(dir.path(), SMALL, &[("APP_ENV", "production")]);

    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("public password"));
    assert!(!dir.path().join("bookworm.db").exists(), "nothing was touched");
}

#[test]
fn every_flag_is_explained_in_help() {
    let help = String::from_utf8_lossy(&seed(Path::new("."), &["--help"], &[]).stdout).into_owned();
    for flag in [
        "--database-url",
        "--authors",
        "--books-per-author",
        "--users",
        "--reviews-per-user",
        "--category-depth",
        "--seed",
        "--demo",
    ] {
        let line = help.lines().find(|l| l.trim_start().contains(flag)).unwrap_or_default();
        let explained = help
            .lines()
            .skip_while(|l| !l.trim_start().contains(flag))
            .nth(1)
            .is_some_and(|next| !next.trim().is_empty() && !next.trim_start().starts_with('-'))
            || line.len() > flag.len() + 20;
        assert!(explained, "{flag} is not explained:\n{help}");
    }
}
