use std::process::ExitCode;

use api::config::Settings;
use api::startup::Application;
use api::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    dotenvy::dotenv().ok();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);

    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}
