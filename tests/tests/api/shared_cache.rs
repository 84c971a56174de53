//! Two API instances sharing one Redis (a `redis-server` of the test's own): one login
//! limit between them, and no stale read through one after a write through the other,
//! for every write that changes a cached read, directly or not. Then Redis stops in the
//! middle of it all: every request is still served, and when Redis is back nothing a
//! write missed meanwhile comes back from its snapshot.
//!
//! A cache hit runs no SQL, so `x-statement-count: 0` (development servers send it)
//! is how a test knows a read was served from the cache.

use std::sync::Arc;
use std::time::Duration;

use api::config::RedisUrl;
use reqwest::Method;
use serde_json::{Value, json};
use tests::redis_server::RedisServer;
use tests::{Backend, PASSWORD, TestApp, TestDatabase, backend_tests, fixtures, spawn_app_on};

/// Instances A and B on one database, sharing `redis`.
async fn two_instances(backend: Backend, redis: &RedisServer, login_limit: u32) -> (TestApp, TestApp) {
    let database = Arc::new(TestDatabase::create(backend).await);
    let settings = |s: &mut api::config::Settings| {
        s.cache.redis_url = Some(RedisUrl::new(redis.url()));
        s.security.throttle.per_account_and_client = login_limit;
        s.observability.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    };
    let a = spawn_app_on(&database, settings).await;
    let b = spawn_app_on(&database, settings).await;
    (a, b)
}

async fn write(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) {
    let response = app.send(method.clone(), path, Some(token), body).await;
    assert!(response.status().is_success(), "{method} {path}: {}", response.status());
}

async fn two_instances_share_one_login_limit(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 4).await;
    assert_eq!(a.register("ada@example.com", PASSWORD, "Ada").await.status(), 201);

    for attempt in 0..4 {
        let through = if attempt % 2 == 0 { &a } else { &b };
        assert_eq!(through.login("ada@example.com", "wrong guess").await.status(), 401);
    }
    assert_eq!(a.login("ada@example.com", "wrong guess").await.status(), 429);
    assert_eq!(
        b.login("ada@example.com", PASSWORD).await.status(),
        429,
        "the fifth attempt is refused whichever instance takes it"
    );
}

async fn catalogue_writes_through_one_instance_are_read_through_the_other(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 5).await;
    let admin = b.admin().await;
    let authors = fixtures::authors(&a.db, 2, "Author").await;
    let books = fixtures::books(&a.db, authors[0], 2).await;
    let (book, author) = (format!("/books/{}", books[0]), format!("/authors/{}", authors[0]));

    a.cached(&book).await;
    write(
        &b,
        Method::PATCH,
        &book,
        &admin.token,
        Some(json!({"title": "Renamed"})),
    )
    .await;
    assert_eq!(a.get_json(&book).await["title"], "Renamed", "the book's own row");

    a.cached(&book).await;
    a.cached(&author).await;
    write(
        &b,
        Method::PATCH,
        &author,
        &admin.token,
        Some(json!({"name": "New Name"})),
    )
    .await;
    assert_eq!(
        a.get_json(&book).await["author"]["name"],
        "New Name",
        "the author shown in the book"
    );
    assert_eq!(a.get_json(&author).await["name"], "New Name");

    a.cached(&author).await;
    let other = format!("/authors/{}", authors[1]);
    a.cached(&other).await;
    let moved = json!({"author_id": authors[1]});
    write(&b, Method::PATCH, &book, &admin.token, Some(moved)).await;
    let titles = |detail: Value| {
        detail["books"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        !titles(a.get_json(&author).await).contains(&books[0].to_string()),
        "gone from the old author"
    );
    assert!(
        titles(a.get_json(&other).await).contains(&books[0].to_string()),
        "listed by the new one"
    );

    let second = format!("/books/{}", books[1]);
    a.cached(&second).await;
    a.cached(&author).await;
    write(&b, Method::DELETE, &second, &admin.token, None).await;
    assert_eq!(a.get(&second).await.status(), 404, "soft-deleted");
    assert!(
        titles(a.get_json(&author).await).is_empty(),
        "and off its author's list"
    );

    a.cached(&book).await;
    write(&b, Method::DELETE, &other, &admin.token, None).await;
    assert_eq!(
        a.get(&book).await.status(),
        404,
        "a deleted author's books go with them"
    );
}

async fn category_writes_through_one_instance_are_read_through_the_other(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 5).await;
    let admin = b.admin().await;
    let author = fixtures::authors(&a.db, 1, "Author").await[0];
    let book = fixtures::books(&a.db, author, 1).await[0];
    let roots = fixtures::categories(&a.db, None, 2, "Root").await;
    let child = fixtures::categories(&a.db, Some(roots[0]), 1, "Child").await[0];
    fixtures::file_under_categories(&a.db, &[book], &[child]).await;
    let (book_path, tree) = (format!("/books/{book}"), format!("/categories/{}/tree", roots[0]));
    let child_path = format!("/categories/{child}");

    a.cached(&book_path).await;
    a.cached(&tree).await;
    write(
        &b,
        Method::PATCH,
        &child_path,
        &admin.token,
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(
        a.get_json(&book_path).await["categories"][0]["name"],
        "Renamed",
        "a renamed category"
    );
    assert_eq!(a.get_json(&tree).await["children"][0]["name"], "Renamed");

    a.cached(&tree).await;
    a.cached(&child_path).await;
    write(
        &b,
        Method::PATCH,
        &child_path,
        &admin.token,
        Some(json!({"parent_id": roots[1]})),
    )
    .await;
    assert_eq!(
        a.get_json(&tree).await["children"],
        json!([]),
        "moved out of the old tree"
    );
    assert_eq!(
        a.get_json(&child_path).await["path"][0]["id"],
        roots[1].to_string(),
        "its breadcrumb"
    );

    a.cached(&book_path).await;
    write(
        &b,
        Method::PUT,
        &format!("{book_path}/categories"),
        &admin.token,
        Some(json!({"category_ids": roots})),
    )
    .await;
    assert_eq!(
        a.get_json(&book_path).await["categories"].as_array().unwrap().len(),
        2,
        "refiled"
    );

    a.cached(&book_path).await;
    write(
        &b,
        Method::DELETE,
        &format!("/categories/{}", roots[1]),
        &admin.token,
        None,
    )
    .await;
    let categories = a.get_json(&book_path).await["categories"].clone();
    assert_eq!(
        categories.as_array().unwrap().len(),
        1,
        "a deleted category leaves the book: {categories}"
    );
}

async fn reviews_and_accounts_written_through_one_instance_are_read_through_the_other(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 5).await;
    let admin = b.admin().await;
    let ada = b.reader("ada@example.com").await;
    let author = fixtures::authors(&a.db, 1, "Author").await[0];
    let book = fixtures::books(&a.db, author, 1).await[0];
    let (book_path, profile) = (format!("/books/{book}"), format!("/users/{}", ada.id));

    a.cached(&book_path).await;
    let review = format!("/reviews/{}", b.review(&ada.token, book, 4, "Good.").await);
    let detail = a.get_json(&book_path).await;
    assert_eq!(
        (detail["review_count"].clone(), detail["average_rating"].clone()),
        (json!(1), json!(4.0)),
        "a new review"
    );

    a.cached(&book_path).await;
    write(&b, Method::PATCH, &review, &ada.token, Some(json!({"rating": 2}))).await;
    assert_eq!(a.get_json(&book_path).await["average_rating"], 2.0, "an edited rating");

    a.cached(&profile).await;
    write(
        &b,
        Method::PATCH,
        "/me/profile",
        &ada.token,
        Some(json!({"display_name": "Ada L.", "phone": "+44 20 7946 0958"})),
    )
    .await;
    assert_eq!(a.get_json(&profile).await["display_name"], "Ada L.", "a profile edit");

    a.cached(&profile).await;
    write(&b, Method::POST, "/admin/stats/refresh", &admin.token, None).await;
    assert_eq!(a.get_json(&profile).await["review_count"], 1, "refreshed statistics");

    a.cached(&book_path).await;
    write(
        &b,
        Method::DELETE,
        &format!("/admin/users/{}", ada.id),
        &admin.token,
        None,
    )
    .await;
    assert_eq!(a.get(&profile).await.status(), 404, "a deleted account");
    assert_eq!(
        a.get_json(&book_path).await["review_count"],
        0,
        "its reviews stop counting"
    );
    a.cached(&book_path).await;
    write(
        &b,
        Method::POST,
        &format!("/admin/users/{}/restore", ada.id),
        &admin.token,
        None,
    )
    .await;
    assert_eq!(a.get_json(&profile).await["display_name"], "Ada L.", "restored");
    assert_eq!(
        a.get_json(&book_path).await["review_count"],
        1,
        "and its review counts again"
    );

    a.cached(&book_path).await;
    write(&b, Method::DELETE, &review, &admin.token, None).await;
    assert_eq!(a.get_json(&book_path).await["review_count"], 0, "a deleted review");

    // Accounts as their owners see them went through the same servers (Ada's profile
    // edit answered with her phone number): none of it is in Redis.
    let me = a.get_as("/me", &admin.token).await;
    assert_eq!(me.status(), 200);
    let everything = redis_contents(&redis).await;
    assert!(!everything.is_empty());
    for private in ["ada@example.com", "7946 0958", "admin@example.com"] {
        assert!(
            !everything.iter().any(|(_, value)| value.contains(private)),
            "{private} is in Redis"
        );
    }
    let kinds = ["book:", "author:", "category:", "category-tree:", "user:"];
    for (key, _) in everything
        .iter()
        .filter(|(k, _)| k.starts_with("bookworm:cache:entry:"))
    {
        let kind = &key["bookworm:cache:entry:".len()..];
        assert!(kinds.iter().any(|k| kind.starts_with(k)), "an unexpected entry: {key}");
    }
}

/// Every key in the test's Redis, with its value (strings only).
async fn redis_contents(redis: &RedisServer) -> Vec<(String, String)> {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS").arg("*").query_async(&mut conn).await.unwrap();
    let mut contents = Vec::new();
    for key in keys {
        let value: Option<Vec<u8>> = ::redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
        contents.push((key, String::from_utf8_lossy(&value.unwrap_or_default()).into_owned()));
    }
    contents
}

/// A slow read loaded the book before a write changed it, and stores what it loaded
/// only after the write's invalidation: the classic fill-after-invalidate race, made
/// deterministic by holding the reader between its load and its store.
async fn a_read_that_stores_after_the_writes_invalidation_is_never_served(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 5).await;
    let admin = b.admin().await;
    let author = fixtures::authors(&a.db, 1, "Author").await[0];
    let book = fixtures::books(&a.db, author, 1).await[0];
    let path = format!("/books/{book}");
    // What the reader loaded: the book as the API renders it, before the write.
    let loaded_book = service::books::get(&a.db, book).await.unwrap();
    let old_body = serde_json::to_vec(&api::views::BookDetailView::from(loaded_book)).unwrap();

    // A third instance's cache on the same Redis, caught mid-miss.
    let link = Arc::new(service::redis_link::RedisLink::new(&redis.url(), Duration::from_secs(1)).unwrap());
    link.probe(service::cache::recover_after_outage).await.unwrap();
    let slow = service::cache::Cache::redis(link, Duration::from_secs(60));
    let (loaded_tx, loaded) = tokio::sync::oneshot::channel();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let slow_read = async {
        slow.get_or_load(service::cache::Key::Book(book), None, async |_| {
            loaded_tx.send(()).unwrap();
            released.await.unwrap();
            Ok::<_, ()>(old_body.clone())
        })
        .await
    };
    let write_meanwhile = async {
        loaded.await.unwrap();
        write(&b, Method::PATCH, &path, &admin.token, Some(json!({"title": "New"}))).await;
        release.send(()).unwrap();
    };
    let (stored, ()) = tokio::join!(slow_read, write_meanwhile);
    assert_eq!(
        &stored.unwrap().body[..],
        &old_body[..],
        "the slow reader got what it loaded"
    );

    assert_eq!(a.get_json(&path).await["title"], "New", "but nobody after it does");
    assert_eq!(a.cached(&path).await["title"], "New");
}

/// Redis stops while both instances serve reads and logins, and a write is made while
/// it is down; Redis restarts from its snapshot, which still holds the old entry.
async fn with_redis_down_every_request_is_served_and_nothing_missed_comes_back(backend: Backend) {
    let mut redis = RedisServer::start().await;
    let (a, b) = two_instances(backend, &redis, 3).await;
    let admin = b.admin().await;
    assert_eq!(a.register("ada@example.com", PASSWORD, "Ada").await.status(), 201);
    let author = fixtures::authors(&a.db, 1, "Author").await[0];
    let book = fixtures::books(&a.db, author, 1).await[0];
    let path = format!("/books/{book}");
    a.cached(&path).await;

    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reads = {
        let (client, a_url, b_url) = (a.client.clone(), a.url(&path), b.url(&path));
        let done = done.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..80 {
                let url = if i % 2 == 0 { &a_url } else { &b_url };
                statuses.push(client.get(url).send().await.unwrap().status().as_u16());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    // Redis stops mid-run: after some reads, with most still to come.
    while done.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.stop().await;
    write(
        &b,
        Method::PATCH,
        &path,
        &admin.token,
        Some(json!({"title": "Written while Redis was down"})),
    )
    .await;
    let statuses = reads.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every read was served: {statuses:?}"
    );
    assert_eq!(a.get_json(&path).await["title"], "Written while Redis was down");

    assert_eq!(
        a.login("ada@example.com", PASSWORD).await.status(),
        200,
        "login works without Redis"
    );
    for _ in 0..2 {
        assert_eq!(a.login("ada@example.com", "wrong").await.status(), 401);
    }
    assert_eq!(
        a.login("ada@example.com", "wrong").await.status(),
        429,
        "and is still limited, per instance"
    );
    let metrics = a.scrape().await;
    assert!(
        metrics.contains(&redis.series("bookworm_redis_up", "0")),
        "Redis shows as down: {metrics}"
    );
    let outages = redis.series("bookworm_redis_outages_total", "");
    assert!(
        metrics.lines().any(|l| l.starts_with(&outages) && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(metrics.contains("bookworm_throttle_local_fallbacks_total"));
    assert!(metrics.contains("result=\"bypass\""), "reads bypassed the cache");

    redis.restart().await;
    // Each instance finds Redis again on its own next probe: wait for both.
    let back = std::time::Instant::now();
    for app in [&a, &b] {
        loop {
            let response = app.get(&path).await;
            let hit = response.headers()["x-statement-count"] == "0";
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["title"], "Written while Redis was down",
                "the snapshot's entry is never served"
            );
            if hit {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(10),
                "an instance never resumed caching"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(a.scrape().await.contains(&redis.series("bookworm_redis_up", "1")));

    assert_eq!(b.register("grace@example.com", PASSWORD, "Grace").await.status(), 201);
    for through in [&a, &b, &a] {
        assert_eq!(through.login("grace@example.com", "wrong").await.status(), 401);
    }
    assert_eq!(
        b.login("grace@example.com", "wrong").await.status(),
        429,
        "and the login limit is shared again"
    );
}

/// A Redis that stops answering (frozen, its connections open) costs the request that
/// notices one `REDIS_TIMEOUT_MS`; the ones after it do not wait at all.
async fn a_redis_that_stops_answering_costs_one_timeout_not_a_hang(backend: Backend) {
    let redis = RedisServer::start().await;
    let (a, _b) = two_instances(backend, &redis, 5).await;
    assert_eq!(a.register("ada@example.com", PASSWORD, "Ada").await.status(), 201);
    let author = fixtures::authors(&a.db, 1, "Author").await[0];
    let book = fixtures::books(&a.db, author, 1).await[0];
    let path = format!("/books/{book}");
    a.cached(&path).await;

    redis.pause();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(a.get(&path).await.status(), 200);
    }
    assert_eq!(a.login("ada@example.com", PASSWORD).await.status(), 200);
    let took = started.elapsed();
    let seen_down = a.scrape().await.contains(&redis.series("bookworm_redis_up", "0"));
    redis.resume();
    // One 250 ms timeout, not 20 of them, and nothing near a hang.
    assert!(took < Duration::from_secs(3), "20 reads and a login took {took:?}");
    assert!(seen_down, "the frozen Redis counts as down");
}

async fn a_detail_answers_304_to_its_own_etag(backend: Backend) {
    let app = tests::spawn_app(backend).await;
    let admin = app.admin().await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let book = fixtures::books(&app.db, author, 1).await[0];
    let path = format!("/books/{book}");

    let first = app.get(&path).await;
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 20, "a strong ETag: {etag}");
    let revalidate = |tag: &str| {
        app.client
            .get(app.url(&path))
            .header("if-none-match", tag.to_owned())
            .send()
    };
    let unchanged = revalidate(&etag).await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert!(unchanged.bytes().await.unwrap().is_empty());
    assert_eq!(
        revalidate(&format!("\"other\", W/{etag}")).await.unwrap().status(),
        304,
        "a list, weakly"
    );

    write(
        &app,
        Method::PATCH,
        &path,
        &admin.token,
        Some(json!({"title": "Changed"})),
    )
    .await;
    let changed = revalidate(&etag).await.unwrap();
    assert_eq!(changed.status(), 200, "a changed book is sent whole");
    assert_ne!(changed.headers()["etag"], etag.as_str());
    assert_eq!(
        app.get("/books").await.headers()["cache-control"],
        "no-store",
        "lists are not stored"
    );
    assert_eq!(
        app.get("/search/books?q=x").await.headers()["cache-control"],
        "no-store"
    );
    assert_eq!(
        app.get(&format!("/books/{}", uuid::Uuid::nil())).await.headers()["cache-control"],
        "no-store",
        "nor errors"
    );
}

backend_tests!(
    two_instances_share_one_login_limit,
    catalogue_writes_through_one_instance_are_read_through_the_other,
    category_writes_through_one_instance_are_read_through_the_other,
    reviews_and_accounts_written_through_one_instance_are_read_through_the_other,
    a_read_that_stores_after_the_writes_invalidation_is_never_served,
    with_redis_down_every_request_is_served_and_nothing_missed_comes_back,
    a_redis_that_stops_answering_costs_one_timeout_not_a_hang,
    a_detail_answers_304_to_its_own_etag,
);

/// Many readers miss one key at once: one of them loads it, the others wait for it.
async fn concurrent_misses_of_one_key_load_it_once(cache: service::cache::Cache) {
    let loads = std::sync::atomic::AtomicUsize::new(0);
    let key = service::cache::Key::Book(uuid::Uuid::now_v7());
    let read = || {
        cache.get_or_load(key, None, async |_| {
            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, ()>(b"{}".to_vec())
        })
    };
    let bodies = futures_util::future::join_all((0..20).map(|_| read())).await;
    assert!(bodies.iter().all(|b| b.as_ref().is_ok_and(|b| &b.body[..] == b"{}")));
    assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1, "one database load");
    assert!(read().await.unwrap().hit, "and then a hit");
}

#[tokio::test]
async fn concurrent_misses_load_once_in_process() {
    concurrent_misses_of_one_key_load_it_once(service::cache::Cache::local(Duration::from_secs(60), 1 << 20)).await;
}

#[tokio::test]
async fn concurrent_misses_load_once_in_redis() {
    let redis = RedisServer::start().await;
    let link = Arc::new(service::redis_link::RedisLink::new(&redis.url(), Duration::from_secs(1)).unwrap());
    link.probe(service::cache::recover_after_outage).await.unwrap();
    concurrent_misses_of_one_key_load_it_once(service::cache::Cache::redis(link, Duration::from_secs(60))).await;
}
