//! `spawn_app`: the real server, built by the same `Application::build` as the
//! binary, on a random port against a fresh database.

use std::sync::Arc;

use api::config::Settings;
use api::startup::Application;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use service::database::DatabaseUrl;

use crate::database::{Backend, TestDatabase};

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: uuid::Uuid,
    pub email: String,
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:port` of `/metrics`, when the settings turned metrics on.
    pub metrics_address: Option<String>,
    pub backend: Backend,
    /// The server's own pool: closing it makes the database unreachable for the app.
    pub app_db: DatabaseConnection,
    /// A separate connection for arranging and inspecting data.
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    /// The server's password-hashing budget, to see how much of it was used.
    pub hashing: Arc<service::accounts::Hashing>,
    /// Shared by every server spawned on it; dropped with the last one.
    pub database: Arc<TestDatabase>,
}

impl TestApp {
    /// Every item of a keyset-paginated list, following `next_cursor` from `path` (which
    /// has a query string) to the last page; no page is longer than the path's `limit`.
    pub async fn walk_pages(&self, path: &str, token: Option<&str>) -> Vec<serde_json::Value> {
        let limit: Option<usize> = path
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("limit="))
            .and_then(|n| n.parse().ok());
        let mut items = Vec::new();
        let mut next = path.to_owned();
        loop {
            let response = self.send(reqwest::Method::GET, &next, token, None).await;
            assert_eq!(response.status(), 200, "GET {next}");
            let page: serde_json::Value = response.json().await.unwrap();
            let page_items = page["items"].as_array().unwrap_or_else(|| panic!("not a page: {page}"));
            assert!(
                limit.is_none_or(|limit| page_items.len() <= limit),
                "GET {next}: longer than the limit"
            );
            items.extend(page_items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => next = format!("{path}&cursor={cursor}"),
                None => return items,
            }
        }
    }

    /// The `/metrics` page, scraped as Prometheus would.
    pub async fn scrape(&self) -> String {
        let address = self.metrics_address.as_ref().expect("metrics were turned on");
        let response = self.client.get(format!("{address}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// The same server as seen by a client at another address: every 127.x.y.z is this
    /// machine, so a test can play several clients (an attacker and a victim, say).
    pub fn from_address(&self, ip: [u8; 4]) -> TestApp {
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("a client bound to a loopback address");
        TestApp {
            address: self.address.clone(),
            metrics_address: self.metrics_address.clone(),
            backend: self.backend,
            app_db: self.app_db.clone(),
            db: self.db.clone(),
            client,
            hashing: self.hashing.clone(),
            database: self.database.clone(),
        }
    }

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

    /// A request with an optional bearer token.
    pub fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let builder = self.request(method, path, token);
        let builder = match body {
            Some(body) => builder.json(&body),
            None => builder,
        };
        builder.send().await.expect("request reaches the server")
    }

    /// GETs `path` (anonymously) and expects a 200; the body as JSON.
    /// Reads `path` until the cache serves it (a hit runs no SQL, so development
    /// servers answer `x-statement-count: 0`), and returns the body.
    pub async fn cached(&self, path: &str) -> serde_json::Value {
        self.get(path).await;
        let again = self.get(path).await;
        assert_eq!(again.status(), 200, "GET {path}");
        assert_eq!(
            again.headers()["x-statement-count"],
            "0",
            "{path} is served from the cache"
        );
        again.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        json_of(response).await
    }

    /// GET as the holder of `token`.
    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, Some(token), None).await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// A POST with no body (a command such as a logout or a restore).
    pub async fn post_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(token), None).await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn put_json(&self, path: &str, token: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, Some(token), None).await
    }

    /// An author made through the API by `admin`; its id.
    pub async fn create_author(&self, admin: &TestUser, name: &str) -> uuid::Uuid {
        let created = self
            .post_json("/authors", &admin.token, serde_json::json!({ "name": name }))
            .await;
        assert_eq!(created.status(), 201, "creating author {name}");
        id_of(created).await
    }

    /// A book by `author` made through the API by `admin`; its id.
    pub async fn create_book(&self, admin: &TestUser, author: uuid::Uuid, title: &str) -> uuid::Uuid {
        let body = serde_json::json!({ "author_id": author, "title": title });
        let created = self.post_json("/books", &admin.token, body).await;
        assert_eq!(created.status(), 201, "creating book {title}");
        id_of(created).await
    }

    /// The holder of `token` reviews `book` with `rating` stars; the new review's id.
    pub async fn review(&self, token: &str, book: impl std::fmt::Display, rating: u8, body: &str) -> uuid::Uuid {
        let body = serde_json::json!({ "rating": rating, "body": body });
        let posted = self.post_json(&format!("/books/{book}/reviews"), token, body).await;
        assert_eq!(posted.status(), 201, "reviewing book {book}");
        id_of(posted).await
    }

    pub async fn register(&self, email: &str, password: &str, display_name: &str) -> reqwest::Response {
        let body = serde_json::json!({ "email": email, "password": password, "display_name": display_name });
        self.send(reqwest::Method::POST, "/auth/register", None, Some(body))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        let body = serde_json::json!({ "email": email, "password": password });
        self.send(reqwest::Method::POST, "/auth/login", None, Some(body)).await
    }

    /// Registers `email` and logs in: a reader with a fresh token.
    pub async fn reader(&self, email: &str) -> TestUser {
        let registered = self.register(email, PASSWORD, "Reader").await;
        assert_eq!(registered.status(), 201, "registering {email}");
        let body: serde_json::Value = registered.json().await.unwrap();
        let id = body["id"].as_str().unwrap().parse().unwrap();
        let token = self.token_for(email, PASSWORD).await;
        TestUser {
            id,
            email: email.to_owned(),
            token,
        }
    }

    /// An admin made the way operators make one (`create-admin`), logged in.
    pub async fn admin(&self) -> TestUser {
        let email = service::accounts::Email::parse("admin@example.com").unwrap();
        let password = service::accounts::Password::parse(PASSWORD).unwrap();
        let created = service::accounts::bootstrap_admin(&self.db, &email, Some(password))
            .await
            .expect("bootstrap an admin");
        assert!(created.tags().is_empty(), "a new admin changes no cached read");
        #[allow(clippy::disallowed_methods)]
        created.unpublished();
        let user = entity::User::find()
            .filter(entity::user::Column::Email.eq(email.as_str()))
            .one(&self.db)
            .await
            .unwrap()
            .unwrap();
        let token = self.token_for(email.as_str(), PASSWORD).await;
        TestUser {
            id: user.id,
            email: email.as_str().to_owned(),
            token,
        }
    }

    pub async fn token_for(&self, email: &str, password: &str) -> String {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), 200, "logging in as {email}");
        let body: serde_json::Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// A database outage as the server sees it. PostgreSQL really stops accepting
    /// connections to this database and kills the open ones; an embedded SQLite file
    /// cannot go away, so the server's pool is closed instead.
    /// The profile row of account `user` as stored: the phone is its ciphertext.
    pub async fn stored_profile(&self, user: uuid::Uuid) -> entity::profile::Model {
        use sea_orm::EntityTrait;
        entity::Profile::find_by_id(user)
            .one(&self.db)
            .await
            .unwrap()
            .expect("a profile row")
    }

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
    settings.server.port = 0;
    settings.database.pool.url = DatabaseUrl::new(url);
    settings.database.pool.max_connections = 5;
    settings.database.pool.min_connections = 1;
    // Every test client registers from 127.0.0.1; the throttle tests set their own limit.
    settings.security.throttle.registrations_per_client = 10_000;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, customise: impl FnOnce(&mut Settings)) -> TestApp {
    let database = Arc::new(TestDatabase::create(backend).await);
    spawn_app_on(&database, customise).await
}

/// Another server on an existing test database, e.g. one configured differently.
pub async fn spawn_app_on(database: &Arc<TestDatabase>, customise: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        // The test process ends without a shutdown to flush at; keep the writer forever.
        std::mem::forget(api::telemetry::init(api::config::LogFormat::Text));
    }
    let mut settings = test_settings(&database.url);
    customise(&mut settings);

    let app = Application::build(settings).await.expect("the application starts");
    let port = app.port();
    let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    let app_db = app.db().clone();
    let hashing = app.hashing().clone();
    tokio::spawn(app.run_until_stopped());

    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        metrics_address,
        backend: database.backend,
        app_db,
        db: database.connect().await,
        client: reqwest::Client::new(),
        hashing,
        database: database.clone(),
    }
}

/// A response's body as JSON, whatever its status.
pub async fn json_of(response: reqwest::Response) -> serde_json::Value {
    response.json().await.expect("a JSON body")
}

/// The `id` of what a response created.
async fn id_of(response: reqwest::Response) -> uuid::Uuid {
    json_of(response).await["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a UUID")
}

/// The `errors` of a problem document, as `(field, message)` pairs.
pub fn field_errors(problem: &serde_json::Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no field errors in {problem}"))
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_owned();
            (text("field"), text("message"))
        })
        .collect()
}
