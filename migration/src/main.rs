//! The migration CLI: `migration up|down|status|fresh|refresh|reset`.
//!
//! sea-orm-migration ships a CLI, but it panics when `DATABASE_URL` is missing or the
//! server is down and pulls in the whole code generator. This one defaults to the
//! same SQLite file as the API, fails with a one-line message, and depends only on
//! the migration library.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use database_url::DatabaseArg;
use migration::session::MigrationTimeouts;
use migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{DatabaseConnection, DbErr};

#[derive(Parser)]
#[command(
    name = "migration",
    about = "Apply, roll back and inspect Bookworm's schema migrations"
)]
struct Cli {
    /// The database to migrate.
    #[command(flatten)]
    database: DatabaseArg,

    /// Milliseconds to wait for the database before giving up.
    #[arg(long, env = "DATABASE_CONNECT_TIMEOUT_MS", default_value_t = 2000)]
    connect_timeout_ms: u64,

    /// Milliseconds a migration may wait for a lock before giving up (PostgreSQL
    /// `lock_timeout`, SQLite busy timeout), so it never holds up traffic queued behind
    /// it for longer; 0 waits for ever.
    #[arg(long, env = "DATABASE_MIGRATION_LOCK_TIMEOUT_MS", default_value_t = millis(MigrationTimeouts::DEFAULT_LOCK),
          value_parser = clap::value_parser!(u64).range(0..=MigrationTimeouts::MAX_MILLIS))]
    lock_timeout_ms: u64,

    /// Milliseconds one migration statement may run (PostgreSQL `statement_timeout`);
    /// 0 for no limit.
    #[arg(long, env = "DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS", default_value_t = millis(MigrationTimeouts::DEFAULT_STATEMENT),
          value_parser = clap::value_parser!(u64).range(0..=MigrationTimeouts::MAX_MILLIS))]
    statement_timeout_ms: u64,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(short, long)]
        num: Option<u32>,
    },
    /// Roll back applied migrations (the last one, or the last N).
    Down {
        #[arg(short, long, default_value_t = 1)]
        num: u32,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Drop every table and type, then apply all migrations.
    Fresh,
    /// Roll back all migrations, then apply them again.
    Refresh,
    /// Roll back all migrations.
    Reset,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "sea_orm_migration=info,warn".into()),
        )
        .with_target(false)
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

const fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

async fn run(cli: Cli) -> Result<(), String> {
    cli.database.warn_if_stray();
    let timeouts = MigrationTimeouts {
        lock: Duration::from_millis(cli.lock_timeout_ms),
        statement: Duration::from_millis(cli.statement_timeout_ms),
    };
    let db = connect(
        &cli.database.url,
        Duration::from_millis(cli.connect_timeout_ms),
        timeouts,
    )
    .await?;
    let result = match cli.command.unwrap_or(Command::Up { num: None }) {
        Command::Up { num } => Migrator::up(&db, num).await,
        Command::Down { num } => Migrator::down(&db, Some(num)).await,
        Command::Fresh => Migrator::fresh(&db).await,
        Command::Refresh => Migrator::refresh(&db).await,
        Command::Reset => Migrator::reset(&db).await,
        Command::Status => print_status(&db).await,
    };
    result.map_err(|e| format!("migration failed: {}", migration::session::explain(&e)))
}

async fn connect(url: &str, timeout: Duration, timeouts: MigrationTimeouts) -> Result<DatabaseConnection, String> {
    database_url::check_database_url(url).map_err(|reason| format!("DATABASE_URL: {reason}"))?;
    migration::session::connect(url, timeout, timeouts)
        .await
        .map_err(|e| format!("cannot connect to the database in DATABASE_URL: {e}"))
}

async fn print_status(db: &DatabaseConnection) -> Result<(), DbErr> {
    let migrations = Migrator::get_migration_with_status(db).await?;
    for m in &migrations {
        println!("{:<8} {}", m.status().to_string(), m.name());
    }
    Ok(())
}
