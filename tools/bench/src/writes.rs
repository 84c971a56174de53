//! The write figures: P11 (shelving a book and reviewing one, against the baseline's
//! hand-written transactions, and SQLite's writes against PostgreSQL's) and P12 (a
//! mixed load: nine reads to one write). Every client writes as a reader of its own,
//! signed in through the API, so row-level security and the audit trigger do their
//! work on both sides.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::baseline::Baseline;
use crate::compare::{self, Contender, Series, round};
use crate::figures::{Plan, against_baseline, detail_paths, print_series};
use crate::load::{self, Req, Workload};
use crate::stack::{self, ApiProcess};

/// Client counts the write figures are measured at.
const CLIENTS: [usize; 2] = [1, 16];
/// Readers signed up per client: reviews need a fresh (reader, book) pair each time.
const READERS_PER_CLIENT: usize = 4;

/// Signs up `count` readers through the API at `base` and returns their tokens. Each
/// registers from a loopback address of its own, as distinct people would, so the
/// per-address registration limit does not apply to the bench.
pub async fn readers(base: &str, count: usize, tag: &str) -> Result<Vec<Arc<str>>, String> {
    let mut tokens = Vec::with_capacity(count);
    for i in 0..count {
        let address = IpAddr::from([127, 0, 20 + (i / 250) as u8, (i % 250) as u8 + 1]);
        let client = reqwest::Client::builder()
            .local_address(address)
            .build()
            .map_err(|e| e.to_string())?;
        let (email, password) = (format!("bench-{tag}-{i}@example.com"), "bench reader password 1");
        let registered = client
            .post(format!("{base}/auth/register"))
            .json(&json!({"email": email, "password": password, "display_name": format!("Reader {i}")}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !registered.status().is_success() {
            return Err(format!("register a bench reader: {}", registered.status()));
        }
        tokens.push(Arc::from(load::sign_in(&client, base, &email, password).await?));
    }
    Ok(tokens)
}

/// `PUT /me/shelf/{book}`: client `w` shelves books in turn as its reader, moving
/// each between "reading" and "read" on later visits (an insert first, then updates).
fn shelving(tokens: Arc<Vec<Arc<str>>>, books: Arc<Vec<String>>) -> Workload {
    Arc::new(move |worker, _, n| {
        let book = &books[(worker * 7919 + n as usize) % books.len()];
        let status = if (n / books.len() as u64).is_multiple_of(2) {
            "reading"
        } else {
            "read"
        };
        Req {
            method: Method::PUT,
            path: format!("/me/shelf/{book}"),
            token: Some(tokens[worker % tokens.len()].clone()),
            body: Some(json!({ "status": status })),
        }
    })
}

/// `POST /books/{book}/reviews`: every review is of a (reader, book) pair never
/// reviewed before, drawn from `next`, which the contenders share (they write to one
/// database): readers in turn, and the next book once each has had one.
fn reviewing(tokens: Arc<Vec<Arc<str>>>, books: Arc<Vec<String>>, next: Arc<AtomicUsize>) -> Workload {
    Arc::new(move |_, _, _| {
        let pick = next.fetch_add(1, Ordering::Relaxed);
        let book = &books[(pick / tokens.len()) % books.len()];
        Req {
            method: Method::POST,
            path: format!("/books/{book}/reviews"),
            token: Some(tokens[pick % tokens.len()].clone()),
            body: Some(
                json!({"rating": 1 + pick % 5, "title": "Bench", "body": "Written by the bench's write figure."}),
            ),
        }
    })
}

/// `usual`, but every `every`-th request of a client is `other`'s.
fn one_in(every: u64, other: Workload, usual: Workload) -> Workload {
    Arc::new(move |worker, workers, n| {
        if n % every == every - 1 {
            other(worker, workers, n)
        } else {
            usual(worker, workers, n)
        }
    })
}

fn figure_of(series: &[Series], into: &mut serde_json::Map<String, Value>, key: &str) {
    let (ours, theirs) = (&series[0], &series[1]);
    into.insert(format!("{key}_rps"), json!(round(ours.median_rps())));
    into.insert(format!("{key}_other_rps"), json!(round(theirs.median_rps())));
    into.insert(
        format!("{key}_ratio"),
        json!(round(ours.median_rps() / theirs.median_rps())),
    );
    into.insert(format!("{key}_p99_ms"), json!(round(ours.median_p99_ms())));
    into.insert(format!("{key}_other_p99_ms"), json!(round(theirs.median_p99_ms())));
    into.insert(format!("{key}_errors"), json!(ours.errors() + theirs.errors()));
}

/// P11: the two writes against the baseline at 1 and 16 clients; then shelving with a
/// review every fourth request at 16 clients, SQLite's API against PostgreSQL's.
pub async fn p11(
    plan: &Plan,
    api_binary: &std::path::Path,
    api: &ApiProcess,
    baseline: &Baseline,
) -> Result<Value, String> {
    let most = *CLIENTS.iter().max().expect("client counts");
    let tokens = Arc::new(readers(&api.base_url, most * READERS_PER_CLIENT, "pg").await?);
    let books = Arc::new(stack::sample_ids(&api.database_url, "books", 20_000).await?);
    let next_review = Arc::new(AtomicUsize::new(0));
    let mut figure = serde_json::Map::new();
    for clients in CLIENTS {
        for (name, work) in [
            ("shelf", shelving(tokens.clone(), books.clone())),
            ("review", reviewing(tokens.clone(), books.clone(), next_review.clone())),
        ] {
            println!("  {name}, {clients} client(s)");
            let s = compare::interleaved(
                &against_baseline(api, baseline, work),
                clients,
                plan.rounds,
                plan.duration,
            )
            .await;
            print_series(&s);
            figure_of(&s, &mut figure, &format!("{name}_{clients}"));
        }
    }

    let started = Instant::now();
    let sqlite = stack::sqlite(&plan.catalogue).await?;
    println!("  SQLite catalogue seeded in {:.1} s", started.elapsed().as_secs_f64());
    let sqlite_api = ApiProcess::start(api_binary, &sqlite.url, plan.pool).await?;
    let sqlite_tokens = Arc::new(readers(&sqlite_api.base_url, most * READERS_PER_CLIENT, "sqlite").await?);
    // The same seed gives the same ids on both backends.
    let sqlite_books = books.clone();
    println!("  shelving with a review every fourth request, {most} clients: SQLite against PostgreSQL");
    let s = compare::interleaved(
        &[
            Contender {
                name: "sqlite",
                base_url: &sqlite_api.base_url,
                work: one_in(
                    4,
                    reviewing(
                        sqlite_tokens.clone(),
                        sqlite_books.clone(),
                        Arc::new(AtomicUsize::new(0)),
                    ),
                    shelving(sqlite_tokens, sqlite_books),
                ),
            },
            Contender {
                name: "postgres",
                base_url: &api.base_url,
                work: one_in(
                    4,
                    reviewing(tokens.clone(), books.clone(), next_review),
                    shelving(tokens, books),
                ),
            },
        ],
        most,
        plan.rounds,
        plan.duration,
    )
    .await;
    print_series(&s);
    figure_of(&s, &mut figure, "sqlite_vs_postgres");
    figure.insert(
        "sqlite_p99_over_postgres".into(),
        json!(round(s[0].median_p99_ms() / s[1].median_p99_ms())),
    );
    Ok(Value::Object(figure))
}

/// P12: nine detail reads to one shelf write, at the headline client count.
pub async fn p12(plan: &Plan, api: &ApiProcess, baseline: &Baseline, ids: &[String]) -> Result<Value, String> {
    let tokens = Arc::new(readers(&api.base_url, plan.connections, "mixed").await?);
    let books = Arc::new(ids.to_vec());
    // Nine detail reads to one shelf write.
    let work = one_in(10, shelving(tokens, books), load::gets(detail_paths(ids)));
    println!(
        "  90 % GET /books/{{id}}, 10 % PUT /me/shelf/{{id}}, {} clients",
        plan.connections
    );
    let contenders = against_baseline(api, baseline, work);
    let s = compare::interleaved(&contenders, plan.connections, plan.rounds, plan.duration).await;
    print_series(&s);
    let mut figure = serde_json::Map::new();
    figure_of(&s, &mut figure, "mixed");
    Ok(Value::Object(figure))
}
