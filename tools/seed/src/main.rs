//! `cargo run -p seed -- --demo`, or `--authors 1000 --books-per-author 100 ...` for a
//! benchmark-sized data set.

use database_url::DatabaseArg;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ConnectOptions, Database, DbErr, SqlErr};
use seed::{Progress, SeedConfig};

#[derive(Parser)]
#[command(
    name = "seed",
    about = "Fill a Bookworm database with deterministic demo data: the same flags give the same rows, ids included",
    after_help = "The database must be migrated first (cargo run -p migration -- up, or start the API once).\n\
                  Everything is written in one transaction: a failed run leaves nothing behind."
)]
struct Cli {
    /// The database to fill.
    #[command(flatten)]
    database: DatabaseArg,
    /// Authors to create.
    #[arg(long, default_value_t = 100)]
    authors: usize,
    /// Books per author (each filed under 1 to 3 categories).
    #[arg(long, default_value_t = 10)]
    books_per_author: usize,
    /// Readers to create. Seeded readers cannot sign in: they have no password.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Books each reader reviews (and shelves as read); each also wants to read one more.
    #[arg(long, default_value_t = 5)]
    reviews_per_user: usize,
    /// Levels in the category tree, 1 (roots only) to 4.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=4))]
    category_depth: u8,
    /// Random seed: the same seed (and sizes) give the same rows, ids included.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also create two accounts that can sign in, demo-reader@example.com and
    /// demo-admin@example.com, password `bookworm-demo-password`. Refused with
    /// APP_ENV=production: the password is public.
    #[arg(long)]
    demo: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    if let Err(reason) = entity::check_database_url(&cli.database.url) {
        eprintln!("error: DATABASE_URL {reason}");
        return ExitCode::FAILURE;
    }
    if cli.demo && std::env::var("APP_ENV").is_ok_and(|env| env == "production") {
        eprintln!("error: --demo creates accounts with a public password, and APP_ENV is production");
        return ExitCode::FAILURE;
    }
    cli.database.warn_if_stray();
    let mut options = ConnectOptions::new(cli.database.url.as_str());
    options.max_connections(1).sqlx_logging(false);
    let db = match Database::connect(options).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("error: cannot connect to the database in DATABASE_URL: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = SeedConfig {
        authors: cli.authors,
        books_per_author: cli.books_per_author,
        users: cli.users,
        reviews_per_user: cli.reviews_per_user,
        category_depth: cli.category_depth.into(),
        seed: cli.seed,
        demo_logins: cli.demo,
    };
    let mut progress = ProgressReport::new();
    let outcome = seed::run_with_progress(&db, &config, &mut |p| progress.show(p)).await;
    progress.finish();
    match outcome {
        Ok(report) => {
            for (table, rows) in report.lines() {
                println!("{table:<16} {rows:>10}");
            }
            println!("done in {:.2?}", report.elapsed);
            if cli.demo {
                println!(
                    "sign in as demo-reader@example.com or demo-admin@example.com, password {}",
                    seed::DEMO_PASSWORD
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: seeding failed, nothing was written: {}", explain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error, with what to do when it means the data is already there.
fn explain(err: &DbErr) -> String {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) => format!(
            "this database already holds rows this seed writes ({detail}). To start over, \
             `cargo run -p migration -- fresh` empties it (everything in it is lost); or seed \
             another database with DATABASE_URL=sqlite://other.db?mode=rwc"
        ),
        _ if err.to_string().contains("no such table") || err.to_string().contains("does not exist") => {
            format!("{err}. Is the database migrated? `cargo run -p migration -- up`")
        }
        _ => err.to_string(),
    }
}

/// A progress bar on a terminal; a line per finished table otherwise (CI, pipes).
enum ProgressReport {
    Bar(ProgressBar),
    Lines,
}

impl ProgressReport {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines;
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:<12} [{bar:30}] {pos:>8}/{len:8} {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        Self::Bar(bar)
    }

    fn show(&mut self, p: Progress) {
        match self {
            Self::Bar(bar) => {
                bar.set_message(p.table);
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            Self::Lines if p.done == p.total => eprintln!("  {} {}/{}", p.table, p.done, p.total),
            Self::Lines => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
