//! Deterministic demo and benchmark data for Bookworm, written through `entity` only.
//!
//! The same [`SeedConfig`] always produces the same rows, ids included: ids are
//! UUID v7 built from a simulated clock and a seeded ChaCha RNG rather than the
//! system clock, so two runs can be compared and bugs reproduced. Rows go in with
//! multi-row INSERTs sized under SQLite's 32,766 bind-parameter limit, which is
//! also safely under PostgreSQL's 65,535, inside one transaction: a failed seed
//! leaves nothing behind.
//!
//! On PostgreSQL that transaction declares itself an admin's
//! (`app.current_role = 'admin'`, transaction-local), because the FORCE'd row-level
//! security policies (migration 16) bind the table owner too and the tool runs as the
//! owner, not as a superuser. Weakening the policies for the owner was rejected: the
//! tool says what it is, in the same words the API uses, only for its own writes.

mod words;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use entity::isbn::Isbn;
use entity::{
    author, book, book_category, category, profile, review, shelf_entry, shelf_entry::ShelfStatus, user, user::Role,
};
use rand::seq::{IndexedRandom, index};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable,
    TransactionTrait,
};
use uuid::Uuid;

/// The largest number of bind parameters one statement may carry (SQLite's limit).
const MAX_BIND_PARAMS: usize = 32_766;
/// Rows per INSERT even when the bind limit would allow more: bigger statements stop
/// paying off and cost memory.
const MAX_ROWS_PER_INSERT: usize = 2_000;

/// Seeded users cannot log in: their password hash is not a valid PHC string.
pub const LOCKED_PASSWORD_HASH: &str = "!seeded-account-no-password";

/// The demo logins of [`SeedConfig::demo_logins`]: (email, role). Both sign in with
/// [`DEMO_PASSWORD`], which is public: never on a database that matters.
pub const DEMO_LOGINS: &[(&str, Role)] = &[
    ("demo-reader@example.com", Role::User),
    ("demo-admin@example.com", Role::Admin),
];
pub const DEMO_PASSWORD: &str = "bookworm-demo-password";
/// [`DEMO_PASSWORD`] hashed as the API hashes passwords (Argon2id, 19 MiB, t=2, p=1),
/// with a fixed salt so that the same flags still give the same rows.
const DEMO_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Ym9va3dvcm0tZGVtby0wMQ$iVE7kPqzGC825OjVuw3DqcwM3uc/HULoleazx0SOivg";

#[derive(Debug, Clone)]
pub struct SeedConfig {
    pub authors: usize,
    pub books_per_author: usize,
    pub users: usize,
    pub reviews_per_user: usize,
    /// Depth of the category tree (1 = roots only).
    pub category_depth: usize,
    pub seed: u64,
    /// Also create [`DEMO_LOGINS`], who can sign in with [`DEMO_PASSWORD`].
    pub demo_logins: bool,
}

impl Default for SeedConfig {
    fn default() -> Self {
        Self {
            authors: 100,
            books_per_author: 10,
            users: 200,
            reviews_per_user: 5,
            category_depth: 3,
            seed: 42,
            demo_logins: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub authors: u64,
    pub books: u64,
    pub categories: u64,
    pub book_categories: u64,
    pub users: u64,
    pub profiles: u64,
    pub reviews: u64,
    pub shelf_entries: u64,
    pub demo_logins: u64,
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn lines(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("authors", self.authors),
            ("books", self.books),
            ("categories", self.categories),
            ("book_categories", self.book_categories),
            ("users", self.users),
            ("profiles", self.profiles),
            ("reviews", self.reviews),
            ("shelf_entries", self.shelf_entries),
            ("demo logins", self.demo_logins),
        ]
    }
}

/// Inserts the whole data set in one transaction.
pub async fn run(db: &DatabaseConnection, config: &SeedConfig) -> Result<SeedReport, DbErr> {
    run_with_progress(db, config, &mut |_| {}).await
}

/// How far [`run_with_progress`] is: `done` of `total` rows of `table` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub table: &'static str,
    pub done: u64,
    pub total: u64,
}

/// [`run`], telling `progress` after every batch of rows.
pub async fn run_with_progress(
    db: &DatabaseConnection,
    config: &SeedConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<SeedReport, DbErr> {
    let started = Instant::now();
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT set_config('app.current_role', 'admin', true)")
            .await?;
    }
    let mut data = Generator::new(config.seed);
    let mut report = SeedReport::default();
    let books_total = (config.authors * config.books_per_author) as u64;
    let users_total = config.users as u64;
    let mut tell = |table, done, total| progress(Progress { table, done, total });

    let author_ids = data.authors(config.authors);
    report.authors = insert_all(&txn, author_ids.iter().map(|a| a.clone().into_active_model()).collect()).await?;
    tell("authors", report.authors, config.authors as u64);
    let author_ids: Vec<Uuid> = author_ids.into_iter().map(|a| a.id).collect();

    let mut category_ids = Vec::new();
    let mut level: Vec<(Option<Uuid>, usize)> = vec![(None, 0)];
    for depth in 0..config.category_depth.max(1) {
        let rows = data.categories(&level, depth);
        report.categories += insert_all(&txn, rows.iter().map(|c| c.clone().into_active_model()).collect()).await?;
        level = rows.iter().map(|c| (Some(c.id), depth + 1)).collect();
        category_ids.extend(rows.into_iter().map(|c| c.id));
    }
    tell("categories", report.categories, report.categories);

    let mut book_ids = Vec::with_capacity(config.authors * config.books_per_author);
    for authors in author_ids.chunks(500) {
        let books = data.books(authors, config.books_per_author, book_ids.len());
        let links = data.book_categories(&books, &category_ids);
        report.books += insert_all(&txn, books.iter().map(|b| b.clone().into_active_model()).collect()).await?;
        report.book_categories += insert_all(&txn, links).await?;
        book_ids.extend(books.into_iter().map(|b| b.id));
        tell("books", report.books, books_total);
    }

    for start in (0..config.users).step_by(1_000) {
        let count = 1_000.min(config.users - start);
        let (users, profiles) = data.users(start, count);
        let (reviews, shelves) = data.reading(&users, &book_ids, config.reviews_per_user);
        report.users += insert_all(&txn, users).await?;
        report.profiles += insert_all(&txn, profiles).await?;
        report.reviews += insert_all(&txn, reviews).await?;
        report.shelf_entries += insert_all(&txn, shelves).await?;
        tell("users", report.users, users_total);
    }

    if config.demo_logins {
        let (users, profiles) = data.demo_logins();
        report.demo_logins = insert_all(&txn, users).await?;
        insert_all(&txn, profiles).await?;
    }

    txn.commit().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// `per_author` books for each of `authors`, as [`run`] would make them from `seed`:
/// the rows a benchmark writes through [`insert_books`] and through a raw driver.
pub fn book_rows(seed: u64, authors: &[Uuid], per_author: usize) -> Vec<book::Model> {
    Generator::new(seed).books(authors, per_author, 0)
}

/// Inserts `rows` the way [`run`] does: multi-row INSERTs in one transaction.
pub async fn insert_books(db: &DatabaseConnection, rows: &[book::Model]) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT set_config('app.current_role', 'admin', true)")
            .await?;
    }
    let inserted = insert_all(&txn, rows.iter().map(|b| b.clone().into_active_model()).collect()).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Multi-row INSERTs of at most [`MAX_BIND_PARAMS`] parameters each.
async fn insert_all<A, C>(db: &C, rows: Vec<A>) -> Result<u64, DbErr>
where
    A: ActiveModelTrait + Send,
    C: sea_orm::ConnectionTrait,
{
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter().count().max(1);
    let per_insert = (MAX_BIND_PARAMS / columns).min(MAX_ROWS_PER_INSERT);
    let mut inserted = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per_insert).collect();
        inserted += <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(inserted)
}

/// Produces rows from a seeded RNG and a simulated clock that only moves forward.
struct Generator {
    rng: ChaCha8Rng,
    clock_ms: i64,
}

impl Generator {
    fn new(seed: u64) -> Self {
        // 2020-01-01T00:00:00Z
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            clock_ms: 1_577_836_800_000,
        }
    }

    /// Advances the clock by up to a minute and returns (timestamp, UUID v7 for it).
    fn tick(&mut self) -> (DateTime<Utc>, Uuid) {
        self.clock_ms += self.rng.random_range(1..=60_000);
        let random: [u8; 10] = self.rng.random();
        let id = uuid::Builder::from_unix_timestamp_millis(self.clock_ms as u64, &random).into_uuid();
        let at = Utc.timestamp_millis_opt(self.clock_ms).single().unwrap_or_default();
        (at, id)
    }

    fn pick<'a>(&mut self, words: &'a [&'a str]) -> &'a str {
        words.choose(&mut self.rng).copied().unwrap_or_default()
    }

    fn sentence(&mut self, words: usize) -> String {
        let text = (0..words)
            .map(|_| self.pick(words::LOREM))
            .collect::<Vec<_>>()
            .join(" ");
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => String::new(),
        }
    }

    fn authors(&mut self, count: usize) -> Vec<author::Model> {
        (0..count)
            .map(|_| {
                let (at, id) = self.tick();
                let name = format!("{} {}", self.pick(words::FIRST_NAMES), self.pick(words::LAST_NAMES));
                let bio = self.rng.random_bool(0.7).then(|| self.sentence(16));
                author::Model {
                    id,
                    name,
                    bio,
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                }
            })
            .collect()
    }

    /// The children of every node in `parents` (or the roots when `parents` is `[(None, _)]`).
    fn categories(&mut self, parents: &[(Option<Uuid>, usize)], depth: usize) -> Vec<category::Model> {
        let names = words::CATEGORY_LEVELS[depth.min(words::CATEGORY_LEVELS.len() - 1)];
        let mut rows = Vec::new();
        for (parent_id, _) in parents {
            let fan_out = if depth == 0 { names.len() } else { names.len().min(4) };
            for name in index::sample(&mut self.rng, names.len(), fan_out)
                .into_iter()
                .map(|i| names[i])
            {
                let (at, id) = self.tick();
                rows.push(category::Model {
                    id,
                    parent_id: *parent_id,
                    name: name.to_owned(),
                    created_at: at,
                    updated_at: at,
                });
            }
        }
        rows
    }

    fn books(&mut self, authors: &[Uuid], per_author: usize, first_index: usize) -> Vec<book::Model> {
        let mut rows = Vec::with_capacity(authors.len() * per_author);
        for author_id in authors {
            for _ in 0..per_author {
                let (at, id) = self.tick();
                let title = match self.rng.random_range(0..3) {
                    0 => format!("The {} {}", self.pick(words::ADJECTIVES), self.pick(words::NOUNS)),
                    1 => format!("{} of the {}", self.pick(words::NOUNS), self.pick(words::NOUNS)),
                    _ => format!("A {} {}", self.pick(words::ADJECTIVES), self.pick(words::NOUNS)),
                };
                let description = self.rng.random_bool(0.9).then(|| self.sentence(30));
                let isbn =
                    Some(Isbn::from_first_twelve(978_000_000_000 + (first_index + rows.len()) as u64).into_string());
                let published_year = Some(self.rng.random_range(1850..=2026));
                rows.push(book::Model {
                    id,
                    author_id: *author_id,
                    title,
                    description,
                    isbn,
                    published_year,
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                });
            }
        }
        rows
    }

    fn book_categories(&mut self, books: &[book::Model], categories: &[Uuid]) -> Vec<book_category::ActiveModel> {
        if categories.is_empty() {
            return Vec::new();
        }
        let mut rows = Vec::new();
        for book in books {
            let count = self.rng.random_range(1..=3).min(categories.len());
            for i in index::sample(&mut self.rng, categories.len(), count) {
                rows.push(
                    book_category::Model {
                        book_id: book.id,
                        category_id: categories[i],
                    }
                    .into_active_model(),
                );
            }
        }
        rows
    }

    fn users(&mut self, first: usize, count: usize) -> (Vec<user::ActiveModel>, Vec<profile::ActiveModel>) {
        let mut users = Vec::with_capacity(count);
        let mut profiles = Vec::with_capacity(count);
        for n in first..first + count {
            let (at, id) = self.tick();
            let first_name = self.pick(words::FIRST_NAMES);
            let last_name = self.pick(words::LAST_NAMES);
            let email = format!(
                "{}.{}.{n}@example.com",
                first_name.to_lowercase(),
                last_name.to_lowercase()
            );
            users.push(
                user::Model {
                    id,
                    email,
                    password_hash: LOCKED_PASSWORD_HASH.to_owned(),
                    role: Role::User,
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                }
                .into_active_model(),
            );
            let bio = self.rng.random_bool(0.5).then(|| self.sentence(12));
            profiles.push(
                profile::Model {
                    user_id: id,
                    display_name: format!("{first_name} {last_name}"),
                    bio,
                    phone: None,
                    created_at: at,
                    updated_at: at,
                }
                .into_active_model(),
            );
        }
        (users, profiles)
    }

    /// [`DEMO_LOGINS`], with their profiles.
    fn demo_logins(&mut self) -> (Vec<user::ActiveModel>, Vec<profile::ActiveModel>) {
        DEMO_LOGINS
            .iter()
            .map(|(email, role)| {
                let (at, id) = self.tick();
                let user = user::Model {
                    id,
                    email: (*email).to_owned(),
                    password_hash: DEMO_PASSWORD_HASH.to_owned(),
                    role: *role,
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                };
                let name = if *role == Role::Admin {
                    "Demo Admin"
                } else {
                    "Demo Reader"
                };
                let profile = profile::Model {
                    user_id: id,
                    display_name: name.to_owned(),
                    bio: None,
                    phone: None,
                    created_at: at,
                    updated_at: at,
                };
                (user.into_active_model(), profile.into_active_model())
            })
            .unzip()
    }

    /// Each user reviews `per_user` distinct books (and shelves them as read), and
    /// wants to read one more.
    fn reading(
        &mut self,
        users: &[user::ActiveModel],
        books: &[Uuid],
        per_user: usize,
    ) -> (Vec<review::ActiveModel>, Vec<shelf_entry::ActiveModel>) {
        let mut reviews = Vec::new();
        let mut shelves = Vec::new();
        let per_user = per_user.min(books.len());
        for user in users {
            let user_id = user.id.clone().unwrap();
            let wanted = (per_user + 1).min(books.len());
            let picked: Vec<Uuid> = index::sample(&mut self.rng, books.len(), wanted)
                .into_iter()
                .map(|i| books[i])
                .collect();
            for (i, book_id) in picked.into_iter().enumerate() {
                let (at, id) = self.tick();
                let status = if i < per_user {
                    ShelfStatus::Read
                } else {
                    ShelfStatus::WantToRead
                };
                shelves.push(
                    shelf_entry::Model {
                        user_id,
                        book_id,
                        status,
                        added_at: at,
                        updated_at: at,
                    }
                    .into_active_model(),
                );
                if i < per_user {
                    let rating = *[1, 2, 3, 3, 4, 4, 4, 5, 5].choose(&mut self.rng).unwrap_or(&4);
                    let title = self.rng.random_bool(0.8).then(|| self.sentence(4));
                    let body = self.sentence(40);
                    reviews.push(
                        review::Model {
                            id,
                            user_id,
                            book_id,
                            rating,
                            title,
                            body,
                            created_at: at,
                            updated_at: at,
                            deleted_at: None,
                        }
                        .into_active_model(),
                    );
                }
            }
        }
        (reviews, shelves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_gives_time_ordered_v7_ids() {
        let mut data = Generator::new(1);
        let (t1, a) = data.tick();
        let (t2, b) = data.tick();
        assert!(t2 > t1 && b > a);
        assert_eq!(a.get_version_num(), 7);
    }
}
