//! `api` serves the HTTP API; `api create-admin --email ...` bootstraps an admin;
//! `api doctor` checks a deployment; `api openapi` prints the API document.

use std::io::BufRead;
use std::process::ExitCode;

use api::config::Settings;
use api::startup::Application;
use api::telemetry;
use clap::{Parser, Subcommand};
use service::accounts::AdminBootstrap;

/// Bookworm's HTTP API (configured by environment variables, see the README)
#[derive(Parser)]
#[command(name = "api")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Make an account an admin, creating it if needed. The password of a new
    /// account is read from BOOKWORM_ADMIN_PASSWORD, or else from standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
    },
    /// Check the deployment this configuration describes: the database and its
    /// version, migrations, the role's privileges, the audit log, replicas, Redis,
    /// the encryption keys and the metrics address. One line per check with its fix;
    /// exits 0 only when all is well. Changes nothing.
    Doctor {
        /// One JSON object instead of lines, for machines.
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI document (the one served at /openapi.json) and exit, for
    /// client generators and linters; needs no configuration and no database.
    Openapi,
}

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    match command {
        Command::Openapi => {
            println!("{}", api::openapi::Document::new().pretty());
            return ExitCode::SUCCESS;
        }
        // The doctor reports a bad setting as one of its findings.
        Command::Doctor { json } => return doctor(json).await,
        Command::Serve | Command::CreateAdmin { .. } => {}
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let _flush_logs_at_exit = telemetry::init(settings.observability.log_format);
    if let Some(warning) = std::env::current_dir()
        .ok()
        .and_then(|dir| entity::stray_default_database(settings.database.pool.url.expose(), &dir))
    {
        tracing::warn!("{warning}");
    }

    let result = match command {
        Command::CreateAdmin { email } => create_admin(settings, &email).await,
        _ => serve(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

async fn doctor(json: bool) -> ExitCode {
    let report = api::doctor::examine(Settings::from_env()).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print!("{}", report.to_text());
    }
    if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let app = Application::build(settings).await.map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| format!("server failed: {e}"))
}

async fn create_admin(settings: Settings, email: &str) -> Result<(), String> {
    let password = match std::env::var("BOOKWORM_ADMIN_PASSWORD") {
        Ok(password) => Some(password),
        Err(_) => {
            eprintln!("password for {email} (used only if the account is new):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read the password: {e}"))?;
            Some(line.trim_end_matches(['\r', '\n']).to_owned()).filter(|p| !p.is_empty())
        }
    };
    match api::commands::create_admin(&settings, email, password).await? {
        (AdminBootstrap::Created, email) => println!("created admin account {email}"),
        (AdminBootstrap::Promoted, email) => {
            println!("{email} is now an admin (its existing tokens were revoked)")
        }
    }
    Ok(())
}
