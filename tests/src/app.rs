//! `spawn_app`: the real server, built by the same `Application::build` as the
//! binary, on a random port against a fresh database.

use api::config::Settings;
use api::startup::Application;
use sea_orm::DatabaseConnection;
use service::database::DatabaseUrl;

use crate::database::{Backend, TestDatabase};

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub backend: Backend,
    /// The server's own pool: closing it makes the database unreachable for the app.
    pub app_db: DatabaseConnection,
    /// A separate connection for arranging and inspecting data.
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    pub database: TestDatabase,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the server")
    }

    /// A database outage as the server sees it. PostgreSQL really stops accepting
    /// connections to this database and kills the open ones; an embedded SQLite file
    /// cannot go away, so the server's pool is closed instead.
    pub async fn make_database_unreachable(&self) {
        match self.backend {
            Backend::Postgres => self.database.refuse_connections().await,
            Backend::Sqlite => self.app_db.close_by_ref().await.expect("close the pool"),
        }
    }
}

/// Default settings pointed at `url`, on a random port, with a pool sized for tests.
pub fn test_settings(url: &str) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).expect("defaults are valid");
    settings.port = 0;
    settings.database.url = DatabaseUrl::new(url);
    settings.database.max_connections = 5;
    settings.database.min_connections = 1;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, customise: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        api::telemetry::init(api::config::LogFormat::Text);
    }
    let database = TestDatabase::create(backend).await;
    let mut settings = test_settings(&database.url);
    customise(&mut settings);

    let app = Application::build(settings)
        .await
        .expect("the application starts");
    let port = app.port();
    let app_db = app.db().clone();
    tokio::spawn(app.run_until_stopped());

    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        backend,
        app_db,
        db: database.connect().await,
        client: reqwest::Client::new(),
        database,
    }
}
