//! The one application context shared by every handler.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use service::accounts::Hashing;
use service::cache::{Cache, Written};
use service::database::Pinned;
use service::field_crypto::FieldCipher;
use service::replicas::Databases;

use crate::throttle::Throttle;

#[derive(Clone)]
pub struct AppContext {
    /// The primary and its read replicas: every write and the reads that must see the
    /// latest state go to [`primary`](Self::primary), the reads that may go to a
    /// replica through [`Databases::read`].
    pub databases: Arc<Databases>,
    /// Upper bound for a readiness probe's round trip to the database.
    pub ready_timeout: Duration,
    /// The migrations this binary was built with; readiness needs every one applied.
    pub expected_migrations: Arc<Vec<String>>,
    pub cipher: FieldCipher,
    pub token_ttl: chrono::TimeDelta,
    /// The password-hashing budget every login and registration goes through.
    pub hashing: Arc<Hashing>,
    /// Login and registration limits.
    pub throttle: Arc<Throttle>,
    /// The public detail reads, and what each write invalidates in them.
    pub cache: Arc<Cache>,
    /// Send `x-statement-count` on every response (development only).
    pub expose_statement_count: bool,
    /// Set once shutdown has begun: readiness then fails, so a load balancer stops
    /// sending new requests while the ones it sent are still served.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl AppContext {
    /// Reads that must see the latest state: the primary, on the request's connection
    /// to it ([`Pinned`]).
    pub fn primary(&self) -> Pinned<'_> {
        self.databases.primary_pinned()
    }

    /// The primary's pool itself: for write transactions (a write gives back the
    /// request's pinned connection before it begins), for work that must not hold a
    /// connection across a slow step (password hashing at login), and for what runs
    /// outside requests. A read of a request goes through [`primary`](Self::primary):
    /// here it would take a second connection while the request holds one.
    pub fn primary_pool(&self) -> &DatabaseConnection {
        &self.databases.primary
    }

    /// After a write has committed: what it changed leaves the cache, on every
    /// instance that shares it, and its result is the handler's.
    pub async fn publish<T>(&self, written: Written<T>) -> T {
        self.cache.publish(&self.databases, written).await
    }
}

/// How a handler takes the application context.
pub type Ctx = actix_web::web::Data<AppContext>;
