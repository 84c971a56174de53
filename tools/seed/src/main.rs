//! `cargo run -p seed -- --authors 1000 --books-per-author 100 --users 5000 --reviews-per-user 10`

use std::process::ExitCode;

use clap::Parser;
use sea_orm::{ConnectOptions, Database};
use seed::SeedConfig;

#[derive(Parser)]
#[command(name = "seed", about = "Fill a Bookworm database with deterministic demo data")]
struct Cli {
    /// Database to fill; its schema must be migrated (`cargo run -p migration -- up`).
    #[arg(
        short = 'u',
        long,
        env = "DATABASE_URL",
        default_value = entity::DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    database_url: String,
    #[arg(long, default_value_t = 100)]
    authors: usize,
    #[arg(long, default_value_t = 10)]
    books_per_author: usize,
    #[arg(long, default_value_t = 200)]
    users: usize,
    #[arg(long, default_value_t = 5)]
    reviews_per_user: usize,
    /// Levels in the category tree.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=4))]
    category_depth: u8,
    /// RNG seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    if let Err(reason) = entity::check_database_url(&cli.database_url) {
        eprintln!("error: DATABASE_URL {reason}");
        return ExitCode::FAILURE;
    }
    let mut options = ConnectOptions::new(cli.database_url.as_str());
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
    };
    match seed::run(&db, &config).await {
        Ok(report) => {
            for (table, rows) in report.lines() {
                println!("{table:<16} {rows:>10}");
            }
            println!("done in {:.2?}", report.elapsed);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: seeding failed, nothing was written: {err}");
            ExitCode::FAILURE
        }
    }
}
