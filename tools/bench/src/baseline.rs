//! The baseline: the same read endpoints written by hand on `tokio-postgres`, the
//! fastest honest alternative to an ORM. actix-web like the API, a deadpool pool of
//! the same size, statements prepared once per connection (deadpool's statement
//! cache), one statement per request, no logging, no middleware. It serves
//! byte-identical JSON; `main` checks that before measuring anything.
//!
//! The writes `PUT /me/shelf/{book_id}` and `POST /books/{id}/reviews` are Bookworm's
//! transactions written by hand, for P11 and P12.
//!
//! `/naive/books` is the list written the way ORMs are blamed for: a statement for
//! the page, then one for each book's author and one for its categories (N+1).

use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::{Deserialize, Serialize};
use service::pagination::Cursor;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

const BOOK_COLUMNS: &str = "b.id, b.title, b.description, b.isbn, b.published_year, b.created_at, b.updated_at, \
     a.id, a.name, COALESCE(c.ids, '{}'), COALESCE(c.names, '{}')";

/// A book's categories as two parallel arrays, in one lateral subquery per book.
const CATEGORIES: &str = "LEFT JOIN LATERAL (SELECT array_agg(c.id ORDER BY c.name, c.id) AS ids, \
     array_agg(c.name ORDER BY c.name, c.id) AS names FROM book_categories bc \
     JOIN categories c ON c.id = bc.category_id WHERE bc.book_id = b.id) c ON true";

const LIVE: &str = "b.deleted_at IS NULL AND a.deleted_at IS NULL";

fn detail_sql() -> String {
    format!(
        "SELECT {BOOK_COLUMNS}, r.average_rating, r.review_count \
         FROM books b JOIN authors a ON a.id = b.author_id {CATEGORIES} \
         CROSS JOIN LATERAL (SELECT CAST(AVG(rv.rating) AS DOUBLE PRECISION) AS average_rating, COUNT(*) AS review_count \
             FROM reviews rv WHERE rv.book_id = b.id AND rv.deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM users u WHERE u.id = rv.user_id AND u.deleted_at IS NULL)) r \
         WHERE b.id = $1 AND {LIVE}"
    )
}

/// The page first (so the categories are gathered for its rows only), then each row's
/// categories.
fn list_sql() -> String {
    format!(
        "SELECT {BOOK_COLUMNS} FROM (SELECT * FROM books b WHERE b.deleted_at IS NULL \
           AND EXISTS (SELECT 1 FROM authors a WHERE a.id = b.author_id AND a.deleted_at IS NULL) \
           ORDER BY b.created_at DESC, b.id DESC LIMIT $1) b \
         JOIN authors a ON a.id = b.author_id {CATEGORIES} ORDER BY b.created_at DESC, b.id DESC"
    )
}

const NAIVE_PAGE_SQL: &str = "SELECT b.id, b.title, b.description, b.isbn, b.published_year, b.created_at, \
     b.updated_at, b.author_id FROM books b JOIN authors a ON a.id = b.author_id \
     WHERE b.deleted_at IS NULL AND a.deleted_at IS NULL ORDER BY b.created_at DESC, b.id DESC LIMIT $1";
const NAIVE_AUTHOR_SQL: &str = "SELECT id, name FROM authors WHERE id = $1";
const NAIVE_CATEGORIES_SQL: &str = "SELECT c.id, c.name FROM book_categories bc JOIN categories c \
     ON c.id = bc.category_id WHERE bc.book_id = $1 ORDER BY c.name, c.id";

#[derive(Serialize)]
struct Named {
    id: Uuid,
    name: String,
}

#[derive(Serialize)]
struct BookView {
    id: Uuid,
    title: String,
    description: Option<String>,
    isbn: Option<String>,
    published_year: Option<i32>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    author: Named,
    categories: Vec<Named>,
}

#[derive(Serialize)]
struct BookDetailView {
    #[serde(flatten)]
    book: BookView,
    average_rating: Option<f64>,
    review_count: i64,
}

#[derive(Serialize)]
struct BookPage {
    items: Vec<BookView>,
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

/// A book from the first seven columns of `row`, with its author and categories.
fn book_from(row: &Row, author: Named, categories: Vec<Named>) -> BookView {
    BookView {
        id: row.get(0),
        title: row.get(1),
        description: row.get(2),
        isbn: row.get(3),
        published_year: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
        author,
        categories,
    }
}

fn book_view(row: &Row) -> BookView {
    let ids: Vec<Uuid> = row.get(9);
    let names: Vec<String> = row.get(10);
    let author = Named {
        id: row.get(7),
        name: row.get(8),
    };
    book_from(
        row,
        author,
        ids.into_iter()
            .zip(names)
            .map(|(id, name)| Named { id, name })
            .collect(),
    )
}

fn page(mut items: Vec<BookView>, limit: i64) -> BookPage {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = more
        .then(|| items.last().map(|b| Cursor::time(b.created_at, b.id).encode()))
        .flatten();
    BookPage { items, next_cursor }
}

fn limit(query: &ListQuery) -> i64 {
    query.limit.unwrap_or(20).clamp(1, 100)
}

fn unavailable(e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::ServiceUnavailable().body(e.to_string())
}

async fn detail(pool: web::Data<Pool>, id: web::Path<Uuid>) -> HttpResponse {
    detail_with(pool, id, false).await
}

/// The detail, then an empty query: one more round trip, the price of sqlx's ping.
async fn detail_plus_round_trip(pool: web::Data<Pool>, id: web::Path<Uuid>) -> HttpResponse {
    detail_with(pool, id, true).await
}

async fn detail_with(pool: web::Data<Pool>, id: web::Path<Uuid>, extra_round_trip: bool) -> HttpResponse {
    let result = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let statement = client.prepare_cached(&detail_sql()).await.map_err(|e| e.to_string())?;
        let row = client.query_opt(&statement, &[&*id]).await.map_err(|e| e.to_string())?;
        if extra_round_trip {
            client.simple_query("").await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(row)
    }
    .await;
    match result {
        Ok(Some(row)) => HttpResponse::Ok().json(BookDetailView {
            book: book_view(&row),
            average_rating: row.get(11),
            review_count: row.get(12),
        }),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => unavailable(e),
    }
}

async fn list(pool: web::Data<Pool>, query: web::Query<ListQuery>) -> HttpResponse {
    let limit = limit(&query);
    let result = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let statement = client.prepare_cached(&list_sql()).await.map_err(|e| e.to_string())?;
        client
            .query(&statement, &[&(limit + 1)])
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(rows) => HttpResponse::Ok().json(page(rows.iter().map(book_view).collect(), limit)),
        Err(e) => unavailable(e),
    }
}

async fn naive_list(pool: web::Data<Pool>, query: web::Query<ListQuery>) -> HttpResponse {
    let limit = limit(&query);
    let result: Result<Vec<BookView>, String> = async {
        let err = |e: tokio_postgres::Error| e.to_string();
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let rows = client.query(NAIVE_PAGE_SQL, &[&(limit + 1)]).await.map_err(err)?;
        let mut books = Vec::with_capacity(rows.len());
        for row in rows {
            let author_id: Uuid = row.get(7);
            let author = client.query_one(NAIVE_AUTHOR_SQL, &[&author_id]).await.map_err(err)?;
            let id: Uuid = row.get(0);
            let categories = client.query(NAIVE_CATEGORIES_SQL, &[&id]).await.map_err(err)?;
            let author = Named {
                id: author.get(0),
                name: author.get(1),
            };
            let categories = categories
                .iter()
                .map(|c| Named {
                    id: c.get(0),
                    name: c.get(1),
                })
                .collect();
            books.push(book_from(&row, author, categories));
        }
        Ok(books)
    }
    .await;
    match result {
        Ok(books) => HttpResponse::Ok().json(page(books, limit)),
        Err(e) => unavailable(e),
    }
}

// The writes (P11, P12): each is the transaction Bookworm runs, statement for statement,
// written by hand — the token lookup, `BEGIN`, the check that the book is live carrying
// the actor's `set_config` pair (the audit trigger and row-level security read it), the
// write, the read of what the response shows, `COMMIT` — prepared, on one pooled
// connection.

const AUTH_SQL: &str = "SELECT u.id, u.role::text FROM api_tokens t JOIN users u ON u.id = t.user_id \
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now() AND u.deleted_at IS NULL";
/// The live book, share-locked, carrying the actor's settings: the write's first read.
const LIVE_BOOK_AS_SQL: &str = "SELECT set_config('app.current_user_id', $2, true), \
     set_config('app.current_role', $3, true) FROM books b WHERE b.id = $1 AND b.deleted_at IS NULL \
     AND EXISTS (SELECT 1 FROM authors a WHERE a.id = b.author_id AND a.deleted_at IS NULL) FOR SHARE";
const SHELVE_SQL: &str = "INSERT INTO shelf_entries (user_id, book_id, status) VALUES ($1, $2, $3::text::shelf_status) \
     ON CONFLICT (user_id, book_id) DO NOTHING";
const SHELF_ROW_SQL: &str = "SELECT status::text FROM shelf_entries WHERE user_id = $1 AND book_id = $2 FOR UPDATE";
const RESHELVE_SQL: &str =
    "UPDATE shelf_entries SET status = $3::text::shelf_status WHERE user_id = $1 AND book_id = $2";
const SHELF_ITEM_SQL: &str = "SELECT s.status::text, s.added_at, s.updated_at, b.id, b.title, a.id, a.name \
     FROM shelf_entries s JOIN books b ON b.id = s.book_id JOIN authors a ON a.id = b.author_id \
     WHERE s.user_id = $1 AND s.book_id = $2";
const REVIEW_SQL: &str = "INSERT INTO reviews (id, user_id, book_id, rating, title, body, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, now(), now())";
const REVIEW_ITEM_SQL: &str = "SELECT r.id, r.rating, r.title, r.body, r.created_at, r.updated_at, b.id, b.title, \
     p.display_name FROM reviews r JOIN books b ON b.id = r.book_id LEFT JOIN profiles p ON p.user_id = r.user_id \
     WHERE r.id = $1";

#[derive(Deserialize)]
struct ShelfBody {
    status: String,
}

#[derive(Deserialize)]
struct ReviewBody {
    rating: i16,
    title: Option<String>,
    body: String,
}

#[derive(Serialize)]
struct ShelfItemView {
    status: String,
    added_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    book: Named,
    author: Named,
}

#[derive(Serialize)]
struct ReviewItemView {
    id: Uuid,
    rating: i16,
    title: Option<String>,
    body: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    book: Named,
    reviewer: Option<String>,
}

/// The caller behind `Authorization: Bearer …`, as Bookworm looks it up.
async fn caller(client: &deadpool_postgres::Client, req: &HttpRequest) -> Result<Option<(Uuid, String)>, String> {
    let Some(hash) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(service::accounts::token::hash_presented)
    else {
        return Ok(None);
    };
    let statement = client.prepare_cached(AUTH_SQL).await.map_err(|e| e.to_string())?;
    let row = client
        .query_opt(&statement, &[&hash])
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// The caller, and a transaction acting as them in which `book` is live and
/// share-locked; `None` for no caller or no such book.
async fn begin_on_book<'c>(
    client: &'c mut deadpool_postgres::Client,
    req: &HttpRequest,
    book: Uuid,
) -> Result<Option<(deadpool_postgres::Transaction<'c>, Uuid)>, String> {
    let err = |e: tokio_postgres::Error| e.to_string();
    let Some((user, role)) = caller(client, req).await? else {
        return Ok(None);
    };
    let txn = client.transaction().await.map_err(err)?;
    let live = txn.prepare_cached(LIVE_BOOK_AS_SQL).await.map_err(err)?;
    let found = txn
        .query_opt(&live, &[&book, &user.to_string(), &role])
        .await
        .map_err(err)?;
    Ok(found.map(|_| (txn, user)))
}

async fn shelve(
    pool: web::Data<Pool>,
    req: HttpRequest,
    book: web::Path<Uuid>,
    body: web::Json<ShelfBody>,
) -> HttpResponse {
    let result: Result<Option<(ShelfItemView, bool)>, String> = async {
        let err = |e: tokio_postgres::Error| e.to_string();
        let mut client = pool.get().await.map_err(|e| e.to_string())?;
        let Some((txn, user)) = begin_on_book(&mut client, &req, *book).await? else {
            return Ok(None);
        };
        let insert = txn.prepare_cached(SHELVE_SQL).await.map_err(err)?;
        let created = txn
            .execute(&insert, &[&user, &*book, &body.status])
            .await
            .map_err(err)?
            == 1;
        if !created {
            let row = txn.prepare_cached(SHELF_ROW_SQL).await.map_err(err)?;
            let current: String = txn.query_one(&row, &[&user, &*book]).await.map_err(err)?.get(0);
            if current != body.status {
                let update = txn.prepare_cached(RESHELVE_SQL).await.map_err(err)?;
                txn.execute(&update, &[&user, &*book, &body.status])
                    .await
                    .map_err(err)?;
            }
        }
        let item = txn.prepare_cached(SHELF_ITEM_SQL).await.map_err(err)?;
        let row = txn.query_one(&item, &[&user, &*book]).await.map_err(err)?;
        txn.commit().await.map_err(err)?;
        let view = ShelfItemView {
            status: row.get(0),
            added_at: row.get(1),
            updated_at: row.get(2),
            book: Named {
                id: row.get(3),
                name: row.get(4),
            },
            author: Named {
                id: row.get(5),
                name: row.get(6),
            },
        };
        Ok(Some((view, created)))
    }
    .await;
    match result {
        Ok(Some((view, true))) => HttpResponse::Created().json(view),
        Ok(Some((view, false))) => HttpResponse::Ok().json(view),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => unavailable(e),
    }
}

async fn review(
    pool: web::Data<Pool>,
    req: HttpRequest,
    book: web::Path<Uuid>,
    body: web::Json<ReviewBody>,
) -> HttpResponse {
    let result: Result<Option<ReviewItemView>, String> = async {
        let err = |e: tokio_postgres::Error| e.to_string();
        let mut client = pool.get().await.map_err(|e| e.to_string())?;
        let Some((txn, user)) = begin_on_book(&mut client, &req, *book).await? else {
            return Ok(None);
        };
        let id = Uuid::now_v7();
        let insert = txn.prepare_cached(REVIEW_SQL).await.map_err(err)?;
        txn.execute(&insert, &[&id, &user, &*book, &body.rating, &body.title, &body.body])
            .await
            .map_err(err)?;
        let item = txn.prepare_cached(REVIEW_ITEM_SQL).await.map_err(err)?;
        let row = txn.query_one(&item, &[&id]).await.map_err(err)?;
        txn.commit().await.map_err(err)?;
        Ok(Some(ReviewItemView {
            id: row.get(0),
            rating: row.get(1),
            title: row.get(2),
            body: row.get(3),
            created_at: row.get(4),
            updated_at: row.get(5),
            book: Named {
                id: row.get(6),
                name: row.get(7),
            },
            reviewer: row.get(8),
        }))
    }
    .await;
    match result {
        Ok(Some(view)) => HttpResponse::Created().json(view),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(e) => unavailable(e),
    }
}

/// A running baseline server.
pub struct Baseline {
    pub base_url: String,
    handle: ServerHandle,
}

impl Baseline {
    /// Serves on a free loopback port, `max_connections` connections to `database_url`.
    pub async fn start(database_url: &str, max_connections: usize) -> std::io::Result<Self> {
        let config: tokio_postgres::Config = database_url
            .parse()
            .map_err(|e| std::io::Error::other(format!("baseline database URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .build()
            .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(pool.clone()))
                .route("/books", web::get().to(list))
                .route("/books/{id}", web::get().to(detail))
                .route("/plus-one-round-trip/books/{id}", web::get().to(detail_plus_round_trip))
                .route("/naive/books", web::get().to(naive_list))
                .route("/me/shelf/{book_id}", web::put().to(shelve))
                .route("/books/{id}/reviews", web::post().to(review))
        })
        .listen(listener)?
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { base_url, handle })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}
