//! The one application context shared by every handler.

use std::time::Duration;

use sea_orm::DatabaseConnection;

#[derive(Clone)]
pub struct AppContext {
    pub db: DatabaseConnection,
    /// Upper bound for a readiness probe's round trip to the database.
    pub ready_timeout: Duration,
}
