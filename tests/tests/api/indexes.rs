//! The planner uses the indexes the schema was designed for. PostgreSQL only: the
//! question is what its cost-based planner chooses on realistic volumes (SQLite's
//! planner would pick the same indexes, but proves nothing about production).

#![cfg(postgres)]

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QuerySelect, Statement, Value};
use serde_json::Value as Json;
use tests::sql::scalar;
use tests::{Backend, TestDatabase, fixtures};

#[derive(Debug)]
struct PlanNode {
    kind: String,
    index: Option<String>,
    relation: Option<String>,
}

struct Case {
    what: &'static str,
    sql: &'static str,
    values: Vec<Value>,
    /// Any of these serves the query.
    indexes: &'static [&'static str],
    table: &'static str,
}

/// Every node of a JSON plan, flattened.
fn nodes(plan: &Json, out: &mut Vec<PlanNode>) {
    if let Some(kind) = plan.get("Node Type").and_then(Json::as_str) {
        let text = |key: &str| plan.get(key).and_then(Json::as_str).map(str::to_owned);
        out.push(PlanNode {
            kind: kind.to_owned(),
            index: text("Index Name"),
            relation: text("Relation Name"),
        });
    }
    for child in plan.get("Plans").and_then(Json::as_array).into_iter().flatten() {
        nodes(child, out);
    }
}

async fn plan(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Vec<PlanNode> {
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
        demo_logins: false,
    };
    seed::run(&db, &config).await.unwrap();
    let parents = fixtures::categories(&db, None, 100, "Shelf").await;
    for parent in &parents {
        fixtures::categories(&db, Some(*parent), 50, "Section").await;
    }
    // VACUUM as autovacuum would: rows bulk-inserted after a GIN index was built sit in
    // its pending list until then, and the planner rightly prices that as a scan.
    db.execute_unprepared("VACUUM ANALYZE").await.unwrap();

    let author = scalar::<uuid::Uuid>(&db, "SELECT id FROM authors ORDER BY id LIMIT 1").await;
    let user = scalar::<uuid::Uuid>(&db, "SELECT id FROM users ORDER BY id LIMIT 1").await;
    let email: String = entity::User::find()
        .select_only()
        .column(entity::user::Column::Email)
        .into_tuple()
        .one(&db)
        .await
        .unwrap()
        .unwrap();

    let cases = vec![
        Case {
            what: "book search",
            sql: "SELECT id FROM books WHERE search @@ websearch_to_tsquery('english', $1) AND deleted_at IS NULL",
            values: vec!["silent lighthouse".into()],
            indexes: &["idx_books_search"],
            table: "books",
        },
        Case {
            what: "books by author",
            sql: "SELECT * FROM books WHERE author_id = $1 AND deleted_at IS NULL ORDER BY title",
            values: vec![author.into()],
            indexes: &["idx_books_author_id"],
            table: "books",
        },
        Case {
            what: "a reader's recent reviews",
            sql: "SELECT * FROM reviews WHERE user_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 20",
            values: vec![user.into()],
            indexes: &["idx_reviews_user_id_created_at"],
            table: "reviews",
        },
        Case {
            what: "an active account by email",
            sql: "SELECT * FROM users WHERE lower(email) = $1 AND deleted_at IS NULL",
            values: vec![email.into()],
            indexes: &["uq_users_email_lower"],
            table: "users",
        },
        Case {
            what: "a category's children",
            sql: "SELECT * FROM categories WHERE parent_id = $1 ORDER BY name",
            values: vec![parents[0].into()],
            indexes: &["idx_categories_parent_id", "uq_categories_sibling_name"],
            table: "categories",
        },
    ];

    // A category's children may use either index on parent_id.
    for Case {
        what,
        sql,
        values,
        indexes,
        table,
    } in cases
    {
        let nodes = plan(&db, sql, values).await;
        let seq_scan = nodes
            .iter()
            .any(|n| n.kind == "Seq Scan" && n.relation.as_deref() == Some(table));
        assert!(!seq_scan, "{what}: sequential scan of {table}: {nodes:?}");
        let used = nodes
            .iter()
            .any(|n| n.index.as_deref().is_some_and(|i| indexes.contains(&i)));
        assert!(used, "{what}: expected one of {indexes:?}, got {nodes:?}");
    }
}

/// A deep page of the keyset list starts reading at its cursor. Written as
/// `created_at < $1 OR (created_at = $1 AND id < $2)`, the planner walked the index from
/// the newest book and filtered out every row before the cursor (page 1,000 of 100,000
/// books took seven times page 1); the row-value comparison is an index range.
#[tokio::test]
async fn a_deep_page_reads_from_its_cursor_not_from_the_first_page() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let config = seed::SeedConfig {
        authors: 200,
        books_per_author: 50,
        users: 10,
        reviews_per_user: 1,
        category_depth: 2,
        seed: 9,
        demo_logins: false,
    };
    seed::run(&db, &config).await.unwrap();
    db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT created_at, id FROM books ORDER BY created_at DESC, id DESC OFFSET 7999 LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap();
    let cursor = service::pagination::Cursor::time(row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap());
    let page = service::pagination::PageRequest::parse(Some(20), Some(&cursor.encode())).unwrap();

    let ran: std::sync::Arc<std::sync::Mutex<Vec<Statement>>> = Default::default();
    let log = ran.clone();
    db.set_metric_callback(move |info| log.lock().unwrap().push(info.statement.clone()));
    let listed = service::books::list(&db, Default::default(), Default::default(), &page)
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 20);
    let statement = ran
        .lock()
        .unwrap()
        .iter()
        .find(|s| s.sql.contains("LIMIT") && s.sql.contains("FROM \"books\""))
        .cloned()
        .expect("the page query ran");

    let explain = Statement {
        sql: format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", statement.sql),
        ..statement
    };
    let json: Json = db
        .query_one_raw(explain)
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    fn books_rows_read(plan: &Json) -> f64 {
        let own = if plan.get("Relation Name").and_then(Json::as_str) == Some("books") {
            plan["Actual Rows"].as_f64().unwrap_or(0.0) + plan["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
        } else {
            0.0
        };
        own + plan
            .get("Plans")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(books_rows_read)
            .sum::<f64>()
    }
    let read = books_rows_read(&json[0]["Plan"]);
    assert!(
        read <= 100.0,
        "page 401 read {read} book rows to return 21; plan: {}",
        json[0]["Plan"]
    );
}
