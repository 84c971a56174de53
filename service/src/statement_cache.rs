//! Statements built once and reused with new values: for the hottest reads, where
//! building a sea-query tree and rendering it to SQL on every request cost more than
//! running it (allocation and rendering were a fifth of the API's CPU on
//! `GET /books/{id}`). The SQL is the same text every time, so the driver's per-connection
//! prepared-statement cache hits on it, as it did before.
//!
//! Rejected: hand-written SQL strings. The tree is still written once with the same
//! builder as every other query, and rendered by it for each backend.

use std::sync::OnceLock;

use sea_orm::sea_query::{SelectStatement, Value};
use sea_orm::{DbBackend, Statement};
use uuid::Uuid;

/// A statement whose only varying value is one id, rendered once per backend.
pub struct ByIdStatement {
    build: fn(DbBackend, Uuid) -> SelectStatement,
    postgres: OnceLock<Statement>,
    sqlite: OnceLock<Statement>,
    other: OnceLock<Statement>,
}

/// Stands for the id while the statement is rendered: a fresh UUID (74 random bits),
/// so that no other value of a statement equals it by chance.
fn placeholder() -> Uuid {
    static PLACEHOLDER: OnceLock<Uuid> = OnceLock::new();
    *PLACEHOLDER.get_or_init(Uuid::now_v7)
}

impl ByIdStatement {
    /// `build` writes the statement for a backend and an id; it is called once per
    /// backend.
    pub const fn new(build: fn(DbBackend, Uuid) -> SelectStatement) -> Self {
        Self {
            build,
            postgres: OnceLock::new(),
            sqlite: OnceLock::new(),
            other: OnceLock::new(),
        }
    }

    pub fn for_id(&self, backend: DbBackend, id: Uuid) -> Statement {
        let cell = match backend {
            DbBackend::Postgres => &self.postgres,
            DbBackend::Sqlite => &self.sqlite,
            _ => &self.other,
        };
        let mut statement = cell
            .get_or_init(|| backend.build(&(self.build)(backend, placeholder())))
            .clone();
        if let Some(values) = statement.values.as_mut() {
            for value in values.0.iter_mut() {
                if *value == Value::Uuid(Some(placeholder())) {
                    *value = Value::Uuid(Some(id));
                }
            }
        }
        statement
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::{Alias, Expr, Query};

    use super::*;

    fn by_id(_: DbBackend, id: Uuid) -> SelectStatement {
        Query::select()
            .column(Alias::new("name"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .and_where(Expr::col(Alias::new("n")).gt(3))
            .to_owned()
    }

    #[test]
    fn a_reused_statement_is_the_one_built_for_that_id() {
        static STATEMENT: ByIdStatement = ByIdStatement::new(by_id);
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            for _ in 0..3 {
                let id = Uuid::now_v7();
                assert_eq!(STATEMENT.for_id(backend, id), backend.build(&by_id(backend, id)));
            }
        }
    }
}
