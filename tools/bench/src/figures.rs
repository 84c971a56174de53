//! The figures P1–P9 of issue #11 and P10 of issue #20, one function each (the write
//! figures P11 and P12 of issue #23 are in `writes.rs`). Every function prints its
//! progress, returns its figure as JSON for `summary.json`, and leaves the databases it
//! made to be dropped by their handles.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use seed::SeedConfig;
use serde_json::{Value, json};
use service::pagination::Cursor;

use crate::baseline::Baseline;
use crate::compare::{self, Contender, Series, round};
use crate::load;
use crate::stack::{self, ApiProcess, Caching, PgStack, StatementCounter};

/// How hard and how long to push.
#[derive(Debug, Clone)]
pub struct Plan {
    pub quick: bool,
    pub rounds: usize,
    pub duration: Duration,
    /// The client count of the headline figures (P2, P3, P4, P9).
    pub connections: usize,
    /// Client counts for the throughput-by-concurrency plots.
    pub sweep: Vec<usize>,
    pub catalogue: SeedConfig,
    pub growth: Vec<SeedConfig>,
    /// Sequential requests per latency sample (P8).
    pub samples: usize,
    /// API and baseline pool size.
    pub pool: u32,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        let catalogue = |authors: usize, books_per_author: usize, users: usize| SeedConfig {
            authors,
            books_per_author,
            users,
            reviews_per_user: 10,
            category_depth: 3,
            seed: 42,
            demo_logins: false,
        };
        if quick {
            Plan {
                quick,
                rounds: 2,
                duration: Duration::from_millis(1500),
                connections: 16,
                sweep: vec![16],
                catalogue: catalogue(100, 20, 300),
                growth: vec![catalogue(50, 20, 100), catalogue(250, 20, 100)],
                samples: 200,
                pool: 20,
            }
        } else {
            Plan {
                quick,
                rounds: 5,
                duration: Duration::from_secs(3),
                connections: 16,
                sweep: vec![1, 4, 16, 64],
                catalogue: catalogue(1_000, 50, 5_000),
                growth: vec![
                    catalogue(200, 50, 1_000),
                    catalogue(2_000, 50, 1_000),
                    catalogue(20_000, 50, 1_000),
                ],
                samples: 2_000,
                pool: 20,
            }
        }
    }
}

pub fn books(config: &SeedConfig) -> usize {
    config.authors * config.books_per_author
}

/// Detail paths for `ids`, list paths with `limit`.
pub fn detail_paths(ids: &[String]) -> Arc<Vec<String>> {
    Arc::new(ids.iter().map(|id| format!("/books/{id}")).collect())
}

pub fn list_paths(prefix: &str, limit: u32) -> Arc<Vec<String>> {
    Arc::new(vec![format!("{prefix}?limit={limit}")])
}

/// Refuses to measure servers that do not say the same thing.
pub async fn check_identical(api: &str, baseline: &str, detail_ids: &[String]) -> Result<usize, String> {
    let mut pairs: Vec<(String, String)> = detail_ids
        .iter()
        .take(20)
        .map(|id| (format!("/books/{id}"), format!("/books/{id}")))
        .collect();
    for limit in [1, 20, 50, 100] {
        pairs.push((format!("/books?limit={limit}"), format!("/books?limit={limit}")));
        pairs.push((format!("/books?limit={limit}"), format!("/naive/books?limit={limit}")));
    }
    for (ours, theirs) in &pairs {
        let a = load::body(api, ours).await?;
        let b = load::body(baseline, theirs).await?;
        if a != b {
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            let from = at.saturating_sub(60);
            return Err(format!(
                "{ours} differs from the baseline's {theirs} at byte {at}:\n  api:      …{}\n  baseline: …{}",
                &a[from..(at + 60).min(a.len())],
                &b[from..(at + 60).min(b.len())]
            ));
        }
    }
    Ok(pairs.len())
}

struct Probe {
    name: &'static str,
    /// `{limit}` is replaced by 1 and by 50; without it the path is requested as is.
    path: String,
    token: Option<String>,
}

/// Statements that fetch no data: transaction control, settings on their own (a
/// `set_config` riding on a read is not one), pings by query.
fn is_overhead(query: &str) -> bool {
    let q = query.trim_start().to_ascii_uppercase();
    [
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SET ",
        "SHOW ",
        "START ",
        "SAVEPOINT",
        "RELEASE",
    ]
    .iter()
    .any(|p| q.starts_with(p))
        || q.starts_with("SELECT SET_CONFIG(")
        || q == "SELECT 1"
        || q == "SELECT $1"
}

/// P1: statements per request, counted by PostgreSQL (`pg_stat_statements`), and
/// messages sent to the server (each statement and each ping is one), for every list
/// at page sizes 1 and 50 and every detail, and for three writes. Holds when no
/// statement is overhead (for writes: none but `BEGIN` and `COMMIT`), a list runs as
/// many statements for 50 rows as for 1, and round trips are at most statements + 1
/// for every request.
pub async fn p1(admin_url: &str, stack: &PgStack, api: &ApiProcess) -> Result<Value, String> {
    if Command::new("ss").arg("-V").output().is_err() {
        return Err("P1 counts round trips with `ss`: install iproute2".into());
    }
    let counter = StatementCounter::new(admin_url, &stack.name(), &stack.app.name).await?;
    let pg_port = stack::port_of(&stack.app.url);
    let base = api.base_url.as_str();
    let app = &stack.app.url;
    let book = stack::sample_ids(app, "books", 1).await?.remove(0);
    let author = stack::sample_ids(app, "authors", 1).await?.remove(0);
    let category = stack::sample_ids(app, "categories", 1).await?.remove(0);
    let review = stack::sample_ids(app, "reviews", 1).await?.remove(0);
    let reader = reviewer(app).await?;
    let (admin_token, shelved) = admin_with_shelf(api, app).await?;
    let as_admin = |name, path| Probe {
        token: Some(admin_token.clone()),
        ..probe(name, path)
    };
    let probes = vec![
        probe("books list", "/books?limit={limit}"),
        probe("books detail", &format!("/books/{book}")),
        probe("book reviews", &format!("/books/{book}/reviews?limit={{limit}}")),
        probe("authors list", "/authors?limit={limit}"),
        probe("author detail", &format!("/authors/{author}")),
        probe("categories list", "/categories?limit={limit}"),
        probe("category detail", &format!("/categories/{category}")),
        probe("category tree", &format!("/categories/{category}/tree")),
        probe("review detail", &format!("/reviews/{review}")),
        probe("user detail", &format!("/users/{reader}")),
        probe("user reviews", &format!("/users/{reader}/reviews?limit={{limit}}")),
        probe("search books", "/search/books?q=the&limit={limit}"),
        probe("search reviews", "/search/reviews?q=book&limit={limit}"),
        as_admin("my shelf", "/me/shelf?limit={limit}"),
        as_admin("me", "/me"),
        as_admin("admin users", "/admin/users?limit={limit}"),
        as_admin("admin audit", "/admin/audit?limit={limit}"),
    ];
    assert!(shelved >= 50, "the shelf holds a page of 50");
    let client = load::client();
    let repeat = 20;
    let mut endpoints = Vec::new();
    let mut holds = true;
    for p in &probes {
        let sizes: &[Option<u32>] = if p.path.contains("{limit}") {
            &[Some(1), Some(50)]
        } else {
            &[None]
        };
        let mut figure = json!({"endpoint": p.name, "path": p.path});
        let mut per_size = Vec::new();
        for size in sizes {
            let path = match size {
                Some(n) => p.path.replace("{limit}", &n.to_string()),
                None => p.path.clone(),
            };
            let send = async |_| {
                let mut request = client.get(format!("{base}{path}"));
                if let Some(token) = &p.token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                match response.status().is_success() {
                    true => Ok(()),
                    false => Err(format!("P1: {path}: {}", response.status())),
                }
            };
            // Every pooled connection prepares its statements once; count the steady state.
            for n in 0..(3 * 20) {
                send(n).await?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (statements, round_trips, calls) = per_request(&counter, api, pg_port, repeat, send).await?;
            let overhead: Vec<&String> = calls.iter().filter(|(_, q)| is_overhead(q)).map(|(_, q)| q).collect();
            holds &= overhead.is_empty();
            // A request's statements share one pooled connection: one release ping in
            // all. (The tolerance is for a stray segment, such as a pool's idle check.)
            holds &= round_trips <= statements + 1.0 + 0.15;
            let key = size.map_or("detail".to_owned(), |n| format!("page_{n}"));
            figure[format!("{key}_statements")] = json!(round(statements));
            figure[format!("{key}_round_trips")] = json!(round(round_trips));
            if !overhead.is_empty() {
                figure[format!("{key}_overhead")] = json!(overhead);
            }
            per_size.push(statements);
        }
        if per_size.len() == 2 && per_size[0] != per_size[1] {
            holds = false;
        }
        let show = |k: &str| {
            figure
                .get(k)
                .and_then(Value::as_f64)
                .map_or("-".into(), |v| format!("{v}"))
        };
        println!(
            "  {:<16} statements {:>4} / {:>4}   round trips {:>5} / {:>5}",
            p.name,
            show(if sizes.len() == 2 {
                "page_1_statements"
            } else {
                "detail_statements"
            }),
            show(if sizes.len() == 2 {
                "page_50_statements"
            } else {
                "detail_statements"
            }),
            show(if sizes.len() == 2 {
                "page_1_round_trips"
            } else {
                "detail_round_trips"
            }),
            show(if sizes.len() == 2 {
                "page_50_round_trips"
            } else {
                "detail_round_trips"
            }),
        );
        endpoints.push(figure);
    }
    let write = p1_write(&counter, api, pg_port, &admin_token, app).await?;
    for one in [&write, &write["shelve_book"], &write["review_book"]] {
        holds &= one["overhead_other_than_begin_commit"]
            .as_array()
            .is_some_and(Vec::is_empty);
        // A write's transaction runs on the request's connection: `BEGIN` and `COMMIT`
        // are statements, and there is no ping but the request's one.
        let figure = |key: &str| one[key].as_f64().unwrap_or(f64::INFINITY);
        holds &= figure("round_trips") <= figure("statements") + 1.0 + 0.15;
    }
    Ok(json!({"holds": holds, "requests_per_sample": repeat, "endpoints": endpoints, "create_book": write}))
}

fn probe(name: &'static str, path: &str) -> Probe {
    Probe {
        name,
        path: path.to_owned(),
        token: None,
    }
}

/// P1 for a write: `POST /books`.
async fn p1_write(
    counter: &StatementCounter,
    api: &ApiProcess,
    pg_port: u16,
    token: &str,
    app_url: &str,
) -> Result<Value, String> {
    let author = stack::sample_ids(app_url, "authors", 1).await?.remove(0);
    let categories = stack::sample_ids(app_url, "categories", 2).await?;
    let client = load::client();
    let create = |n: usize| {
        client
            .post(format!("{}/books", api.base_url))
            .bearer_auth(token)
            .json(&json!({"author_id": author, "title": format!("Bench book {n}"), "category_ids": categories}))
            .send()
    };
    let mut figure = p1_one_write(counter, api, pg_port, "create book", 201, async |n| {
        create(n).await.map_err(|e| e.to_string())
    })
    .await?;
    // Every book: the admin has reviewed none of them.
    let books = stack::sample_ids(app_url, "books", 20_000).await?;
    let shelve = |n: usize| {
        client
            .put(format!("{}/me/shelf/{}", api.base_url, books[100 + n]))
            .bearer_auth(token)
            .json(&json!({"status": "reading"}))
            .send()
    };
    figure["shelve_book"] = p1_one_write(counter, api, pg_port, "shelve book", 0, async |n| {
        shelve(n).await.map_err(|e| e.to_string())
    })
    .await?;
    let review = |n: usize| {
        client
            .post(format!("{}/books/{}/reviews", api.base_url, books[200 + n]))
            .bearer_auth(token)
            .json(&json!({"rating": 4, "body": "A review the bench wrote."}))
            .send()
    };
    figure["review_book"] = p1_one_write(counter, api, pg_port, "review book", 201, async |n| {
        review(n).await.map_err(|e| e.to_string())
    })
    .await?;
    Ok(figure)
}

/// Statements and round trips of one kind of write: `send(n)` for n = 0, 1, … must
/// each write something and answer `status` (0: any 2xx).
async fn p1_one_write(
    counter: &StatementCounter,
    api: &ApiProcess,
    pg_port: u16,
    name: &str,
    status: u16,
    send: impl AsyncFn(usize) -> Result<reqwest::Response, String>,
) -> Result<Value, String> {
    // Every pooled connection prepares its statements once; count the steady state.
    for n in 0..60 {
        send(n).await?;
    }
    let repeat = 20;
    let written = async |n| {
        let response = send(60 + n).await?;
        match response.status().as_u16() == status || status == 0 && response.status().is_success() {
            true => Ok(()),
            false => Err(format!("P1: {name}: {}", response.status())),
        }
    };
    let (statements, round_trips, calls) = per_request(counter, api, pg_port, repeat, written).await?;
    let other: Vec<&String> = calls
        .iter()
        .filter(|(_, q)| {
            let q = q.trim_start().to_ascii_uppercase();
            is_overhead(&q) && !(q.starts_with("BEGIN") || q.starts_with("COMMIT"))
        })
        .map(|(_, q)| q)
        .collect();
    println!("  {name:<16} statements {statements:>4}          round trips {round_trips:>5}");
    Ok(json!({
        "statements": round(statements),
        "round_trips": round(round_trips),
        "statements_by_query": calls.iter().map(|(n, q)| json!({"calls_per_request": round(*n as f64 / repeat as f64), "query": q})).collect::<Vec<_>>(),
        "overhead_other_than_begin_commit": other,
    }))
}

/// The first of the session settings every new pooled connection runs once
/// (`service::database`): a measurement that counted it caught a connection being
/// opened, whose settings and handshake are not any request's work.
fn opens_a_connection(query: &str) -> bool {
    query
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("SET STATEMENT_TIMEOUT")
}

/// Statements (by query, from `counter`) and round trips per request over `repeat`
/// requests, `send(n)` for n = 0, 1, …. The API keeps no connection open while idle
/// and opens one when a request finds none, so a measurement that caught one being
/// opened is taken again, up to three times: P1 counts a request's work in the steady
/// state, and a pool that kept opening connections would still fail it.
async fn per_request(
    counter: &StatementCounter,
    api: &ApiProcess,
    pg_port: u16,
    repeat: usize,
    send: impl AsyncFn(usize) -> Result<(), String>,
) -> Result<(f64, f64, Vec<(i64, String)>), String> {
    let (mut sent, mut attempt) = (0, 1);
    loop {
        counter.reset().await?;
        let before = api.segments_sent_to(pg_port);
        for _ in 0..repeat {
            send(sent).await?;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let round_trips = (api.segments_sent_to(pg_port) - before) as f64 / repeat as f64;
        let calls = counter.calls().await?;
        if attempt < 3 && calls.iter().any(|(_, q)| opens_a_connection(q)) {
            attempt += 1;
            continue;
        }
        let statements = calls.iter().map(|(n, _)| *n).sum::<i64>() as f64 / repeat as f64;
        return Ok((statements, round_trips, calls));
    }
}

/// A user with live reviews.
async fn reviewer(url: &str) -> Result<String, String> {
    let db = stack::connect(url).await?;
    let id: String = stack::scalar(
        &db,
        "SELECT CAST(user_id AS TEXT) FROM reviews WHERE deleted_at IS NULL ORDER BY user_id LIMIT 1",
    )
    .await?;
    db.close().await.ok();
    Ok(id)
}

/// Makes an admin with `api create-admin`, logs in, and shelves 60 books.
async fn admin_with_shelf(api: &ApiProcess, app_url: &str) -> Result<(String, usize), String> {
    let (email, password) = ("bench-admin@example.com", "bench-admin-password-1");
    let status = Command::new(api.binary())
        .args(["create-admin", "--email", email])
        .env("DATABASE_URL", app_url)
        .env("DATABASE_AUTO_MIGRATE", "false")
        .env("BOOKWORM_ADMIN_PASSWORD", password)
        .output()
        .map_err(|e| e.to_string())?;
    if !status.status.success() {
        return Err(format!("create-admin: {}", String::from_utf8_lossy(&status.stderr)));
    }
    let client = load::client();
    let token = load::sign_in(&client, &api.base_url, email, password).await?;
    let books = stack::sample_ids(app_url, "books", 60).await?;
    for book in &books {
        let response = client
            .put(format!("{}/me/shelf/{book}", api.base_url))
            .bearer_auth(&token)
            .json(&json!({"status": "read"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("shelve a book: {}", response.status()));
        }
    }
    Ok((token, books.len()))
}

/// P2 (detail) and P3 (list of 50) against the baseline, at every client count of the
/// sweep, the counts taking turns within each round. The headline figures are those at
/// `plan.connections`; P2 also judges the sweep's largest count, and how much of the
/// headline count's throughput each server keeps there.
pub async fn p2_p3(plan: &Plan, api: &ApiProcess, baseline: &Baseline, ids: &[String]) -> (Value, Value, Value) {
    let detail = detail_paths(ids);
    // What one more round trip per request costs the baseline: Bookworm's one extra is
    // sqlx's ping on taking the connection back (P1: 2 where the SQL needs 1).
    let plus_one = Contender {
        name: "baseline +1 round trip",
        base_url: &baseline.base_url,
        work: load::gets(Arc::new(
            detail.iter().map(|p| format!("/plus-one-round-trip{p}")).collect(),
        )),
    };
    let n_plus_one = Contender {
        name: "naive N+1",
        base_url: &baseline.base_url,
        work: load::gets(list_paths("/naive/books", 50)),
    };
    let details = sweep(
        plan,
        against_baseline(api, baseline, load::gets(detail)),
        plus_one,
        "detail",
    )
    .await;
    let lists = sweep(
        plan,
        against_baseline(api, baseline, load::gets(list_paths("/books", 50))),
        n_plus_one,
        "list of 50",
    )
    .await;
    let at = |connections: usize| plan.sweep.iter().position(|&c| c == connections);
    let headline = at(plan.connections).expect("the sweep includes the headline count");
    let (d, l) = (&details[headline], &lists[headline]);
    let mut p2 = with(
        versus(&d[0], &d[1]),
        json!({
            "connections": plan.connections,
            "baseline_plus_round_trip_rps": round(d[2].median_rps()),
            "round_trip_cost": round(1.0 - d[2].median_rps() / d[1].median_rps()),
            "ratio_vs_baseline_plus_round_trip": round(d[0].median_rps() / d[2].median_rps()),
            "bookworm": d[0].to_json(),
            "baseline": d[1].to_json(),
            "baseline_plus_round_trip": d[2].to_json(),
            "target": "ratio >= 0.70, p99_ratio <= 1.5",
        }),
    );
    let most = plan.sweep.iter().copied().max().unwrap_or(plan.connections);
    if most > plan.connections {
        let m = &details[at(most).expect("in the sweep")];
        p2["most_clients"] = with(
            versus(&m[0], &m[1]),
            json!({
                "connections": most,
                "bookworm_share_of_headline": round(compare::per_round_share(&m[0], &d[0])),
                "baseline_share_of_headline": round(compare::per_round_share(&m[1], &d[1])),
                "target": "ratio >= 0.65, p99_ratio <= 1.5, bookworm_share_of_headline >= 0.95",
            }),
        );
    }
    let p3 = with(
        versus(&l[0], &l[1]),
        json!({
            "connections": plan.connections,
            "n_plus_one_rps": round(l[2].median_rps()),
            "ratio_vs_n_plus_one": round(l[0].median_rps() / l[2].median_rps()),
            "n_plus_one_p99_ms": round(l[2].median_p99_ms()),
            "bookworm": l[0].to_json(),
            "baseline": l[1].to_json(),
            "n_plus_one": l[2].to_json(),
            "target": "ratio >= 0.60, ratio_vs_n_plus_one >= 5",
        }),
    );
    let sweep = plan
        .sweep
        .iter()
        .zip(details.iter().zip(&lists))
        .map(|(connections, (d, l))| {
            json!({
                "connections": connections,
                "detail": {"bookworm": d[0].to_json(), "baseline": d[1].to_json()},
                "list": {"bookworm": l[0].to_json(), "baseline": l[1].to_json()},
            })
        })
        .collect();
    (p2, p3, Value::Array(sweep))
}

/// Bookworm's median throughput and p99 against the baseline's, and their ratios.
fn versus(bookworm: &Series, baseline: &Series) -> Value {
    json!({
        "bookworm_rps": round(bookworm.median_rps()),
        "baseline_rps": round(baseline.median_rps()),
        "ratio": round(bookworm.median_rps() / baseline.median_rps()),
        "bookworm_p99_ms": round(bookworm.median_p99_ms()),
        "baseline_p99_ms": round(baseline.median_p99_ms()),
        "p99_ratio": round(bookworm.median_p99_ms() / baseline.median_p99_ms()),
    })
}

/// `figure` with the fields of `more` added.
fn with(mut figure: Value, more: Value) -> Value {
    if let (Value::Object(figure), Value::Object(more)) = (&mut figure, more) {
        figure.extend(more);
    }
    figure
}

/// `pair` at every client count of the sweep, with `extra` beside them at the headline
/// count, the counts taking turns in each round; prints each count's figures.
async fn sweep(plan: &Plan, pair: Vec<Contender<'_>>, extra: Contender<'_>, what: &str) -> Vec<Vec<Series>> {
    let with_extra: Vec<Contender> = pair.iter().cloned().chain([extra]).collect();
    let steps: Vec<(usize, &[Contender])> = plan
        .sweep
        .iter()
        .map(|&connections| {
            let contenders = if connections == plan.connections {
                &with_extra[..]
            } else {
                &pair[..]
            };
            (connections, contenders)
        })
        .collect();
    let series = compare::interleaved_sweep(&steps, plan.rounds, plan.duration).await;
    for (&connections, s) in plan.sweep.iter().zip(&series) {
        println!("  {what}, {connections} clients");
        print_series(s);
    }
    series
}

/// The API and the baseline, sent the same requests.
pub fn against_baseline<'a>(api: &'a ApiProcess, baseline: &'a Baseline, work: load::Workload) -> Vec<Contender<'a>> {
    vec![
        Contender {
            name: "bookworm",
            base_url: &api.base_url,
            work: work.clone(),
        },
        Contender {
            name: "baseline",
            base_url: &baseline.base_url,
            work,
        },
    ]
}

pub fn print_series(series: &[Series]) {
    for s in series {
        println!("    {:<22} {}", s.name, s.describe());
    }
}

/// P4: `pgbench -S` (select-only, prepared) with the same client count on the same
/// server, interleaved with the API's detail reads.
pub async fn p4(plan: &Plan, admin_url: &str, api: &ApiProcess, ids: &[String]) -> Result<Value, String> {
    let bench_db = tests::TestDatabase::create_on(admin_url).await;
    let pgbench = tests::cluster::postgres_bin().join("pgbench");
    let run = |args: &[&str]| {
        let output = Command::new(&pgbench)
            .args(args)
            .arg(&bench_db.url)
            .output()
            .map_err(|e| format!("{}: {e}", pgbench.display()))?;
        if !output.status.success() {
            return Err(format!("pgbench {args:?}: {}", String::from_utf8_lossy(&output.stderr)));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    run(&["-i", "-q", "-s", if plan.quick { "1" } else { "10" }])?;
    let clients = plan.connections.to_string();
    let seconds = plan.duration.as_secs().max(1).to_string();
    let paths = detail_paths(ids);
    let (mut tps, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..plan.rounds {
        let out = run(&["-S", "-n", "-M", "prepared", "-c", &clients, "-j", "2", "-T", &seconds])?;
        let value = out
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| format!("no tps in pgbench output: {out}"))?;
        tps.push(value);
        ours.push(
            load::run(&api.base_url, paths.clone(), plan.connections, plan.duration)
                .await
                .rps(),
        );
    }
    let (tps_median, ours_median) = (compare::median(&tps), compare::median(&ours));
    println!("    pgbench -S {tps_median:>8.0} tps, Bookworm detail {ours_median:>8.0} req/s");
    Ok(json!({
        "connections": plan.connections,
        "pgbench_tps": round(tps_median),
        "pgbench_tps_rounds": tps.iter().map(|v| round(*v)).collect::<Vec<_>>(),
        "bookworm_rps": round(ours_median),
        "ratio": round(ours_median / tps_median),
        "target": "reported",
    }))
}

/// P5: rows per second inserting the same books through the seed tool (SeaORM
/// multi-row INSERT), a raw multi-row INSERT and COPY, each into the emptied table.
pub async fn p5(plan: &Plan, admin_url: &str) -> Result<Value, String> {
    let count = if plan.quick { 5_000 } else { 50_000 };
    let stack = PgStack::create(
        admin_url,
        &SeedConfig {
            authors: 100,
            books_per_author: 1,
            users: 0,
            reviews_per_user: 0,
            category_depth: 1,
            seed: 7,
            demo_logins: false,
        },
    )
    .await?;
    let url = stack.database.url.clone();
    let db = stack::connect(&url).await?;
    let authors: Vec<uuid::Uuid> = stack::sample_ids(&url, "authors", 100)
        .await?
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    let rows = seed::book_rows(11, &authors, count / authors.len());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let empty = async || -> Result<(), String> {
        client
            .batch_execute("TRUNCATE books CASCADE")
            .await
            .map_err(|e| e.to_string())
    };
    let (mut seeded, mut inserted, mut copied) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.rounds.min(3) {
        empty().await?;
        let started = Instant::now();
        seed::insert_books(&db, &rows).await.map_err(|e| e.to_string())?;
        seeded.push(rows.len() as f64 / started.elapsed().as_secs_f64());
        empty().await?;
        let started = Instant::now();
        crate::raw_insert::multi_row(&client, &rows).await?;
        inserted.push(rows.len() as f64 / started.elapsed().as_secs_f64());
        empty().await?;
        let started = Instant::now();
        crate::raw_insert::copy(&client, &rows).await?;
        copied.push(rows.len() as f64 / started.elapsed().as_secs_f64());
    }
    drop(client);
    driver.await.ok();
    db.close().await.ok();
    let (s, i, c) = (
        compare::median(&seeded),
        compare::median(&inserted),
        compare::median(&copied),
    );
    println!("    seed {s:>9.0} rows/s, raw INSERT {i:>9.0} rows/s, COPY {c:>9.0} rows/s");
    Ok(json!({
        "rows": rows.len(),
        "seed_rows_per_s": round(s),
        "insert_rows_per_s": round(i),
        "copy_rows_per_s": round(c),
        "ratio_vs_copy": round(s / c),
        "ratio_vs_insert": round(s / i),
        "target": "ratio_vs_copy >= 0.80",
    }))
}

/// P7: resident memory of the API process, idle and at its peak under load.
pub fn p7(idle: (f64, f64), api: &ApiProcess) -> Value {
    let (now, peak) = api.memory_mib();
    println!(
        "    idle {:.1} MiB, peak under load {:.1} MiB (now {:.1} MiB)",
        idle.0, peak, now
    );
    json!({
        "idle_mib": round(idle.0),
        "under_load_mib": round(peak),
        "after_load_mib": round(now),
        "target": "under_load_mib <= 64",
    })
}

/// P10: a sign-in storm against a fresh API process — 30 clients, each on a loopback
/// address of its own and within the throttle's limits, send 5 failed logins and 10
/// registrations each (150 and 300 in all, every one a full Argon2id hash). Resident
/// memory before (the same-run baseline), at its peak, and after a quiet spell; the
/// latency of each kind of request under the storm.
pub async fn p10(plan: &Plan, api_binary: &Path, database_url: &str) -> Result<Value, String> {
    const CLIENTS: u8 = 30;
    const LOGINS: usize = 5;
    const REGISTRATIONS: usize = 10;
    let api = ApiProcess::start(api_binary, database_url, plan.pool).await?;
    let (idle, _) = api.memory_mib();
    let started = Instant::now();
    let storm: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let base = api.base_url.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 10, client + 1]))
                    .build()
                    .expect("a client on a loopback address");
                let mut requests = Vec::new();
                for i in 0..REGISTRATIONS {
                    if i < LOGINS {
                        let email = format!("storm-nobody-{client}-{i}@example.com");
                        requests.push(("login", json!({"email": email, "password": "not the right password"})));
                    }
                    let email = format!("storm-{client}-{i}@example.com");
                    let password = "correct horse battery staple";
                    requests.push((
                        "register",
                        json!({"email": email, "password": password, "display_name": "Storm"}),
                    ));
                }
                let mut answers = Vec::new();
                for (path, body) in requests {
                    let sent = Instant::now();
                    let status = http
                        .post(format!("{base}/auth/{path}"))
                        .json(&body)
                        .send()
                        .await
                        .map_or(0, |r| r.status().as_u16());
                    answers.push((path, status, sent.elapsed()));
                }
                answers
            })
        })
        .collect();
    let mut peak_seen = idle;
    let mut answers = Vec::new();
    for client in storm {
        while !client.is_finished() {
            peak_seen = peak_seen.max(api.memory_mib().0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answers.extend(client.await.map_err(|e| e.to_string())?);
    }
    let storm_s = started.elapsed().as_secs_f64();
    let (during, peak) = api.memory_mib();
    let quiet = if plan.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(15)
    };
    tokio::time::sleep(quiet).await;
    let (after, _) = api.memory_mib();

    let mut statuses: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    let mut latency = |kind: &str| {
        let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for (path, status, took) in &answers {
            if *path == kind {
                *statuses.entry(kind.to_owned()).or_default().entry(*status).or_default() += 1;
                histogram.saturating_record(took.as_micros() as u64);
            }
        }
        (
            histogram.value_at_quantile(0.5) as f64 / 1000.0,
            histogram.value_at_quantile(0.99) as f64 / 1000.0,
        )
    };
    let (login_p50, login_p99) = latency("login");
    let (register_p50, register_p99) = latency("register");
    let peak = peak.max(peak_seen).max(during);
    println!(
        "    {} logins and {} registrations from {CLIENTS} clients in {storm_s:.1} s: {statuses:?}",
        CLIENTS as usize * LOGINS,
        CLIENTS as usize * REGISTRATIONS
    );
    println!(
        "    resident: idle {idle:.1} MiB, peak {peak:.1} MiB, {:.0} s later {after:.1} MiB",
        quiet.as_secs_f64()
    );
    println!(
        "    login p50 {login_p50:.1} ms, p99 {login_p99:.1} ms; registration p50 {register_p50:.1} ms, p99 {register_p99:.1} ms"
    );
    Ok(json!({
        "clients": CLIENTS,
        "logins": CLIENTS as usize * LOGINS,
        "registrations": CLIENTS as usize * REGISTRATIONS,
        "statuses": statuses,
        "storm_s": round(storm_s),
        "idle_mib": round(idle),
        "peak_mib": round(peak),
        "after_mib": round(after),
        "after_s": quiet.as_secs(),
        "login_p50_ms": round(login_p50),
        "login_p99_ms": round(login_p99),
        "register_p50_ms": round(register_p50),
        "register_p99_ms": round(register_p99),
        "target": "peak_mib <= 128",
    }))
}

/// P8: detail and list latency at growing catalogue sizes, and page 1 against a deep
/// page of the keyset list.
pub async fn p8(plan: &Plan, admin_url: &str, api_binary: &Path) -> Result<Value, String> {
    let mut sizes = Vec::new();
    for config in &plan.growth {
        let started = Instant::now();
        let stack = PgStack::create(admin_url, config).await?;
        println!(
            "  {} books (seeded in {:.1} s)",
            stack.books,
            started.elapsed().as_secs_f64()
        );
        let api = ApiProcess::start(api_binary, &stack.app.url, plan.pool).await?;
        let ids = stack::sample_ids(&stack.app.url, "books", 500).await?;
        let pages = (stack.books as usize / 20).saturating_sub(1);
        let deep = 1_000.min(pages);
        let cursor = cursor_before_page(&stack.app.url, deep, 20).await?;
        let base = api.base_url.as_str();
        // Warm every path once, then sample each sequentially.
        let detail_paths = detail_paths(&ids);
        let first_page = [String::from("/books?limit=20")];
        let deep_page = [format!("/books?limit=20&cursor={cursor}")];
        for path in detail_paths.iter().chain(&first_page).chain(&deep_page) {
            load::body(base, path).await?;
        }
        let detail = load::sequential(base, &detail_paths, plan.samples).await;
        let first = load::sequential(base, &first_page, plan.samples).await;
        let deep_page = load::sequential(base, &deep_page, plan.samples).await;
        println!(
            "    detail p50 {:.3} ms p99 {:.3} ms | page 1 p50 {:.3} ms p99 {:.3} ms | page {deep} p50 {:.3} ms p99 {:.3} ms",
            detail.p50_ms(),
            detail.p99_ms(),
            first.p50_ms(),
            first.p99_ms(),
            deep_page.p50_ms(),
            deep_page.p99_ms()
        );
        sizes.push(json!({
            "books": stack.books,
            "detail_p50_ms": round(detail.p50_ms()),
            "detail_p99_ms": round(detail.p99_ms()),
            "list_page_1_p50_ms": round(first.p50_ms()),
            "list_page_1_p99_ms": round(first.p99_ms()),
            "deep_page": deep + 1,
            "list_deep_page_p50_ms": round(deep_page.p50_ms()),
            "list_deep_page_p99_ms": round(deep_page.p99_ms()),
        }));
        drop(api);
    }
    let spread = |key: &str| {
        let values: Vec<f64> = sizes.iter().filter_map(|s| s[key].as_f64()).collect();
        round(compare::max(&values) / compare::min(&values))
    };
    let deep_vs_first: Vec<f64> = sizes
        .iter()
        .filter_map(|s| Some(s["list_deep_page_p50_ms"].as_f64()? / s["list_page_1_p50_ms"].as_f64()?))
        .collect();
    Ok(json!({
        "sizes": sizes,
        "detail_p50_growth": spread("detail_p50_ms"),
        "list_p50_growth": spread("list_page_1_p50_ms"),
        "deep_page_vs_first": round(compare::max(&deep_vs_first)),
        "target": "every growth and deep_page_vs_first <= 1.5",
    }))
}

/// The cursor that `next_cursor` of page `page` would carry (rows are newest first).
async fn cursor_before_page(url: &str, page: usize, limit: usize) -> Result<String, String> {
    let db = stack::connect(url).await?;
    let sql = format!(
        "SELECT b.created_at, CAST(b.id AS TEXT) FROM books b JOIN authors a ON a.id = b.author_id \
         WHERE b.deleted_at IS NULL AND a.deleted_at IS NULL ORDER BY b.created_at DESC, b.id DESC \
         LIMIT 1 OFFSET {}",
        (page * limit).saturating_sub(1)
    );
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no such page")?;
    let at: DateTime<Utc> = row.try_get_by_index(0).map_err(|e| e.to_string())?;
    let id: String = row.try_get_by_index(1).map_err(|e| e.to_string())?;
    db.close().await.ok();
    Ok(Cursor::time(at, id.parse().map_err(|_| "an id")?).encode())
}

/// P6: the book detail with the cache off (the API of P2), in process, and in Redis
/// (a `redis-server` of the bench's own), interleaved on the same catalogue; then each
/// cache's hit ratio from its own `/metrics`, and what the in-process one holds.
pub async fn p6(
    plan: &Plan,
    api_binary: &Path,
    database_url: &str,
    uncached: &ApiProcess,
    ids: &[String],
) -> Result<Value, String> {
    let redis = tests::redis_server::RedisServer::start().await;
    let in_process = ApiProcess::start_caching(api_binary, database_url, plan.pool, Caching::InProcess).await?;
    let shared = ApiProcess::start_caching(api_binary, database_url, plan.pool, Caching::Redis(redis.url())).await?;
    let detail = detail_paths(ids);
    println!("  detail of {} books, {} clients", ids.len(), plan.connections);
    let s = compare::interleaved(
        &[
            Contender {
                name: "uncached",
                base_url: &uncached.base_url,
                work: load::gets(detail.clone()),
            },
            Contender {
                name: "in-process",
                base_url: &in_process.base_url,
                work: load::gets(detail.clone()),
            },
            Contender {
                name: "redis",
                base_url: &shared.base_url,
                work: load::gets(detail.clone()),
            },
        ],
        plan.connections,
        plan.rounds,
        plan.duration,
    )
    .await;
    print_series(&s);
    let in_process_hits = hit_ratio(&in_process).await?;
    let redis_hits = hit_ratio(&shared).await?;
    println!("    hit ratio: in-process {in_process_hits:.3}, redis {redis_hits:.3}");
    Ok(json!({
        "connections": plan.connections,
        "books": ids.len(),
        "uncached_rps": round(s[0].median_rps()),
        "in_process_rps": round(s[1].median_rps()),
        "redis_rps": round(s[2].median_rps()),
        "in_process_ratio": round(s[1].median_rps() / s[0].median_rps()),
        "redis_ratio": round(s[2].median_rps() / s[0].median_rps()),
        "uncached_p99_ms": round(s[0].median_p99_ms()),
        "in_process_p99_ms": round(s[1].median_p99_ms()),
        "redis_p99_ms": round(s[2].median_p99_ms()),
        "in_process_hit_ratio": round(in_process_hits),
        "redis_hit_ratio": round(redis_hits),
        "in_process_rss_mib": round(in_process.memory_mib().0),
        "uncached_rss_mib": round(uncached.memory_mib().0),
        "target": "reported",
    }))
}

/// Hits over all lookups, from the API's own `bookworm_cache_requests_total`.
async fn hit_ratio(api: &ApiProcess) -> Result<f64, String> {
    let url = api.metrics_url.as_ref().ok_or("the API was started without metrics")?;
    let text = load::client()
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .text()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let (mut hits, mut all) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with("bookworm_cache_requests_total{")) {
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        all += value;
        if line.contains("result=\"hit\"") {
            hits += value;
        }
    }
    if all == 0.0 {
        return Err(format!("{url} counted no cache lookups"));
    }
    Ok(hits / all)
}

/// P9: the same detail and list reads on the SQLite default, against PostgreSQL.
pub async fn p9(plan: &Plan, api_binary: &Path, pg_api: &ApiProcess, ids: &[String]) -> Result<Value, String> {
    let started = Instant::now();
    let sqlite = stack::sqlite(&plan.catalogue).await?;
    println!("  SQLite catalogue seeded in {:.1} s", started.elapsed().as_secs_f64());
    let api = ApiProcess::start(api_binary, &sqlite.url, plan.pool).await?;
    // The same seed gives the same ids on both backends.
    let detail = detail_paths(ids);
    let list = list_paths("/books", 20);
    let mut figure = BTreeMap::new();
    for (name, paths) in [("detail", &detail), ("list", &list)] {
        println!("  {name}, {} clients", plan.connections);
        let s = compare::interleaved(
            &[
                Contender {
                    name: "sqlite",
                    base_url: &api.base_url,
                    work: load::gets(paths.clone()),
                },
                Contender {
                    name: "postgres",
                    base_url: &pg_api.base_url,
                    work: load::gets(paths.clone()),
                },
            ],
            plan.connections,
            plan.rounds,
            plan.duration,
        )
        .await;
        print_series(&s);
        figure.insert(format!("{name}_sqlite_rps"), json!(round(s[0].median_rps())));
        figure.insert(format!("{name}_postgres_rps"), json!(round(s[1].median_rps())));
        figure.insert(
            format!("{name}_ratio"),
            json!(round(s[0].median_rps() / s[1].median_rps())),
        );
        figure.insert(format!("{name}_sqlite_p99_ms"), json!(round(s[0].median_p99_ms())));
        figure.insert(format!("{name}_postgres_p99_ms"), json!(round(s[1].median_p99_ms())));
    }
    figure.insert("target".into(), json!("detail_ratio >= 0.8"));
    Ok(json!(figure))
}
