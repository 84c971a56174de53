//! The planner uses the indexes the schema was designed for. PostgreSQL only: the
//! question is what its cost-based planner chooses on realistic volumes (SQLite's
//! planner would pick the same indexes, but proves nothing about production).

#![cfg(postgres)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QuerySelect, Statement, Value};
use serde_json::Value as Json;
use tests::{Backend, TestDatabase, fixtures};

/// Every node of a JSON plan, flattened.
fn nodes(plan: &Json, out: &mut Vec<(String, Option<String>, Option<String>)>) {
    if let Some(node) = plan.get("Node Type").and_then(Json::as_str) {
        let index = plan.get("Index Name").and_then(Json::as_str).map(str::to_owned);
        let relation = plan.get("Relation Name").and_then(Json::as_str).map(str::to_owned);
        out.push((node.to_owned(), index, relation));
    }
    for child in plan.get("Plans").and_then(Json::as_array).into_iter().flatten() {
        nodes(child, out);
    }
}

async fn plan(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<(String, Option<String>, Option<String>)> {
    let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
    let row = db
        .query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, explain, values))
        .await
        .unwrap()
        .unwrap();
    let json: Json = row.try_get_by_index(0).unwrap();
    let mut out = Vec::new();
    nodes(&json[0]["Plan"], &mut out);
    out
}

async fn one_id(db: &DatabaseConnection, sql: &str) -> uuid::Uuid {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test]
async fn the_main_queries_use_their_indexes_not_sequential_scans() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let config = seed::SeedConfig {
        authors: 200,
        books_per_author: 50,
        users: 2_000,
        reviews_per_user: 5,
        category_depth: 3,
        seed: 5,
    };
    seed::run(&db, &config).await.unwrap();
    let parents = fixtures::categories(&db, None, 100, "Shelf").await;
    for parent in &parents {
        fixtures::categories(&db, Some(*parent), 50, "Section").await;
    }
    // VACUUM as autovacuum would: rows bulk-inserted after a GIN index was built sit in
    // its pending list until then, and the planner rightly prices that as a scan.
    db.execute_unprepared("VACUUM ANALYZE").await.unwrap();

    let author = one_id(&db, "SELECT id FROM authors ORDER BY id LIMIT 1").await;
    let user = one_id(&db, "SELECT id FROM users ORDER BY id LIMIT 1").await;
    let email: String = entity::User::find()
        .select_only()
        .column(entity::user::Column::Email)
        .into_tuple()
        .one(&db)
        .await
        .unwrap()
        .unwrap();

    let cases: Vec<(&str, &str, Vec<Value>, &[&str], &str)> = vec![
        (
            "book search",
            "SELECT id FROM books WHERE search @@ websearch_to_tsquery('english', $1) AND deleted_at IS NULL",
            vec!["silent lighthouse".into()],
            &["idx_books_search"],
            "books",
        ),
        (
            "books by author",
            "SELECT * FROM books WHERE author_id = $1 AND deleted_at IS NULL ORDER BY title",
            vec![author.into()],
            &["idx_books_author_id"],
            "books",
        ),
        (
            "a reader's recent reviews",
            "SELECT * FROM reviews WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 20",
            vec![user.into()],
            &["idx_reviews_user_id_created_at"],
            "reviews",
        ),
        (
            "an active account by email",
            "SELECT * FROM users WHERE email = $1 AND deleted_at IS NULL",
            vec![email.into()],
            // Both serve it; the unique index exists for the constraint, the partial one for this lookup.
            &["idx_users_active_email", "users_email_key"],
            "users",
        ),
        (
            "a category's children",
            "SELECT * FROM categories WHERE parent_id = $1 ORDER BY name",
            vec![parents[0].into()],
            &["idx_categories_parent_id", "uq_categories_sibling_name"],
            "categories",
        ),
    ];

    for (what, sql, values, indexes, table) in cases {
        let nodes = plan(&db, sql, values).await;
        let seq_scan = nodes
            .iter()
            .any(|(node, _, relation)| node == "Seq Scan" && relation.as_deref() == Some(table));
        assert!(!seq_scan, "{what}: sequential scan of {table}: {nodes:?}");
        let used = nodes
            .iter()
            .any(|(_, index, _)| index.as_deref().is_some_and(|i| indexes.contains(&i)));
        assert!(used, "{what}: expected one of {indexes:?}, got {nodes:?}");
    }
}
