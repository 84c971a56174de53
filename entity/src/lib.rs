//! SeaORM entities for the Bookworm schema, in the 2.0 dense format.
//!
//! This crate enables no database driver, so any workspace tool (the API, the seed
//! tool, a one-off script) can import it and choose its own driver and runtime.
//! It describes tables; it does not create them: the `migration` crate owns the
//! schema, and the two are kept in step by the round-trip tests in `tests/`.
//!
//! Primary keys are UUID v7, generated here on insert (see [`uuid_v7_primary_key`]),
//! not by a database default: they are unique across machines like v4, yet
//! time-ordered, so B-tree inserts stay at the right-hand edge of the index.
//!
//! Besides the tables, the few values every importer must agree on live here: the
//! default database URL and which URLs are supported (from the `database-url` crate,
//! which the migration CLI shares), and the ISBN ([`isbn`]).

pub use database_url::{DEFAULT_DATABASE_URL, check_database_url, stray_default_database};

pub mod api_token;
pub mod audit_log;
pub mod author;
pub mod book;
pub mod book_category;
pub mod category;
pub mod isbn;
pub mod profile;
pub mod review;
pub mod shelf_entry;
pub mod user;
pub mod user_stats;

pub use api_token::Entity as ApiToken;
pub use audit_log::Entity as AuditLog;
pub use author::Entity as Author;
pub use book::Entity as Book;
pub use book_category::Entity as BookCategory;
pub use category::Entity as Category;
pub use profile::Entity as Profile;
pub use review::Entity as Review;
pub use shelf_entry::Entity as ShelfEntry;
pub use user::Entity as User;
pub use user_stats::Entity as UserStats;

/// Implements `ActiveModelBehavior` so that an insert without an `id` gets a fresh
/// UUID v7. Bulk `insert_many` bypasses the hook: callers of it set ids themselves.
#[macro_export]
macro_rules! uuid_v7_primary_key {
    () => {
        #[::sea_orm::entity::prelude::async_trait::async_trait]
        impl ::sea_orm::ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, ::sea_orm::DbErr>
            where
                C: ::sea_orm::ConnectionTrait,
            {
                if insert && self.id.is_not_set() {
                    self.id = ::sea_orm::Set(::uuid::Uuid::now_v7());
                }
                Ok(self)
            }
        }
    };
}
