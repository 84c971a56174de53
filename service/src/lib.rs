//! Bookworm's business rules and every query the API runs.
//!
//! One module per aggregate; each exposes plain async functions taking a
//! connection, so handlers, tools and tests call the same code. Nothing here knows
//! about HTTP: errors are [`ServiceError`], which the API maps to status codes.

pub mod accounts;
pub mod audit;
pub mod authors;
pub mod books;
pub mod cache;
pub mod categories;
pub mod database;
pub mod error;
pub mod field_crypto;
pub mod input;
pub mod lsn;
pub mod metrics;
pub mod pagination;
pub mod readiness;
pub mod redis_link;
pub mod replicas;
pub mod reviews;
pub mod search;
pub mod shelves;
pub mod statement_cache;
pub mod stats;
pub mod visibility;
pub mod written;

pub use error::ServiceError;
