//! `bench`: Bookworm's figures, measured side by side with a hand-written
//! `tokio-postgres` server in the same run. See docs/performance.md.
//!
//! ```text
//! cargo run --release -p bench -- [--quick]
//! ```
//!
//! Under `cargo run` it builds the `api` binary it measures first, in the same profile;
//! run directly, it uses the one beside it, or the one `--api` names.

mod baseline;
mod compare;
mod cpu;
mod figures;
mod load;
mod raw_insert;
mod report;
mod stack;
mod writes;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use serde_json::{Map, Value, json};

use crate::baseline::Baseline;
use crate::figures::Plan;
use crate::stack::{ApiProcess, PgStack};

/// Bookworm against a raw tokio-postgres baseline, side by side
#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    /// A few seconds per figure on a small catalogue: proves every figure still runs.
    #[arg(long)]
    quick: bool,
    /// PostgreSQL superuser URL; the bench creates (and drops) its own databases there.
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// The API binary to measure [default: the release build next to this binary].
    #[arg(long)]
    api: Option<PathBuf>,
    /// Where summary.json goes [default: <target>/bench].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Rewrite the generated part of docs/performance.md and its plots (full runs only).
    #[arg(long)]
    write_docs: bool,
    /// Instead of the figures, drive `GET /books/{id}` at the API for this many
    /// seconds, printing its pid first: a steady load to profile (`perf record -p`).
    /// Ends with the CPU time each part of the stack spent per request. 16 clients, or
    /// the most `--clients` names.
    #[arg(long, value_name = "SECONDS")]
    soak: Option<u64>,
    /// With `--soak`: drive the baseline server instead of the API.
    #[arg(long, requires = "soak")]
    soak_baseline: bool,
    /// Measure only these figures (e.g. `P1,P2,P3`) [default: all].
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// An environment variable for every API the bench starts, to measure what a
    /// setting costs (e.g. `--api-env RUST_LOG=warn`); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    api_env: Vec<String>,
    /// The client counts of the sweep (e.g. `16,64`), to measure a change at the
    /// counts it is about; must include the headline count, 16 [default: 1,4,16,64].
    #[arg(long, value_delimiter = ',')]
    clients: Vec<usize>,
    /// The pool size of both servers, to measure how the detail's tail moves with it
    /// [default: 20, the API's default]; cannot go with --write-docs.
    #[arg(long)]
    pool: Option<u32>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Interrupted, the run is dropped, and with it every database, role and server it made.
    let outcome = tokio::select! {
        outcome = run(cli) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted; cleaned up".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let started = Instant::now();
    let mut plan = Plan::new(cli.quick);
    if !cli.clients.is_empty() {
        if cli.write_docs || !cli.clients.contains(&plan.connections) {
            return Err(format!(
                "--clients must include {} and cannot go with --write-docs",
                plan.connections
            ));
        }
        plan.sweep = cli.clients.clone();
    }
    if let Some(pool) = cli.pool {
        if cli.write_docs || pool == 0 {
            return Err("--pool must be at least 1 and cannot go with --write-docs".into());
        }
        plan.pool = pool;
    }
    let api_env = cli
        .api_env
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect::<Option<Vec<_>>>()
        .ok_or("--api-env takes KEY=VALUE")?;
    stack::API_ENV.set(api_env).expect("set once");
    if cli.write_docs && (cli.quick || !cli.only.is_empty()) {
        return Err("--write-docs needs a full run of every figure, not --quick or --only".into());
    }
    let wanted = |id: &str| cli.only.is_empty() || cli.only.iter().any(|o| o.eq_ignore_ascii_case(id));
    let admin_url = cli
        .postgres_url
        .or_else(|| std::env::var("TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let api_binary = match cli.api {
        Some(path) => path,
        None => stack::default_api_binary()?,
    };
    let out = cli.out.unwrap_or_else(|| report::target_dir().join("bench"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    let environment = report::environment(&admin_url, &plan, &api_binary).await?;
    report::print_environment(&environment);
    let mut summary = Map::new();
    summary.insert("environment".into(), environment);

    report::section(&format!(
        "catalogue: {} books on PostgreSQL as the restricted API role",
        figures::books(&plan.catalogue)
    ));
    let stack = PgStack::create(&admin_url, &plan.catalogue).await?;
    let api = ApiProcess::start(&api_binary, &stack.app.url, plan.pool).await?;
    let idle_memory = api.memory_mib();
    let baseline = Baseline::start(&stack.app.url, plan.pool as usize)
        .await
        .map_err(|e| e.to_string())?;
    let ids = stack::sample_ids(&stack.app.url, "books", 1_000).await?;
    let checked = figures::check_identical(&api.base_url, &baseline.base_url, &ids).await?;
    println!("  {checked} response bodies identical to the baseline's, byte for byte");
    if let Some(seconds) = cli.soak {
        let (server, url) = match cli.soak_baseline {
            false => ("the API", &api.base_url),
            true => ("the baseline", &baseline.base_url),
        };
        println!("  soaking {server} (API pid {}) for {seconds} s", api.pid);
        let paths = figures::detail_paths(&ids);
        let before = cpu::Sample::now(api.pid);
        let clients = cli.clients.iter().copied().max().unwrap_or(plan.connections);
        println!("  {clients} clients");
        let measured = load::run(url, paths, clients, std::time::Duration::from_secs(seconds)).await;
        let after = cpu::Sample::now(api.pid);
        println!(
            "  {:.0} req/s, mean {:.2} ms, p50 {:.2}, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
            measured.rps(),
            measured.histogram.mean() / 1000.0,
            measured.quantile_ms(0.5),
            measured.quantile_ms(0.9),
            measured.quantile_ms(0.99),
            measured.quantile_ms(0.999),
            measured.histogram.max() as f64 / 1000.0,
        );
        println!("  {}", before.per_request(&after, measured.requests));
        return Ok(());
    }

    if wanted("P1") {
        report::section("P1 statements and round trips per request (page of 1 / page of 50)");
        let p1 = match stack::StatementCounter::new(&admin_url, &stack.name(), &stack.app.name).await {
            Ok(_) => figures::p1(&admin_url, &stack, &api).await?,
            Err(why) => p1_on_own_cluster(&plan, &api_binary, &why).await?,
        };
        summary.insert("P1".into(), p1);
    }

    if wanted("P2") || wanted("P3") {
        report::section(&format!(
            "P2 GET /books/{{id}} and P3 GET /books?limit=50 ({} rounds of {:.1} s, interleaved)",
            plan.rounds,
            plan.duration.as_secs_f64()
        ));
        let (p2, p3, sweep) = figures::p2_p3(&plan, &api, &baseline, &ids).await;
        summary.insert("P2".into(), p2);
        summary.insert("P3".into(), p3);
        summary.insert("concurrency_sweep".into(), sweep);
    }

    if wanted("P4") {
        report::section("P4 against pgbench -S on the same server");
        summary.insert("P4".into(), figures::p4(&plan, &admin_url, &api, &ids).await?);
    }

    if wanted("P5") {
        report::section("P5 seed insert throughput against raw INSERT and COPY");
        summary.insert("P5".into(), figures::p5(&plan, &admin_url).await?);
    }

    if wanted("P6") {
        report::section("P6 cached against uncached detail reads");
        summary.insert(
            "P6".into(),
            figures::p6(&plan, &api_binary, &stack.app.url, &api, &ids).await?,
        );
    }

    if wanted("P9") {
        report::section("P9 SQLite default against PostgreSQL");
        summary.insert("P9".into(), figures::p9(&plan, &api_binary, &api, &ids).await?);
    }

    if wanted("P7") {
        report::section("P7 API resident memory");
        summary.insert("P7".into(), figures::p7(idle_memory, &api));
    }

    if wanted("P11") {
        report::section("P11 writes: shelving and reviewing against the baseline; SQLite against PostgreSQL");
        summary.insert("P11".into(), writes::p11(&plan, &api_binary, &api, &baseline).await?);
    }

    if wanted("P12") {
        report::section("P12 mixed: nine reads to one write");
        summary.insert("P12".into(), writes::p12(&plan, &api, &baseline, &ids).await?);
    }

    if wanted("P10") {
        report::section("P10 API resident memory through a sign-in storm (a fresh process)");
        summary.insert("P10".into(), figures::p10(&plan, &api_binary, &stack.app.url).await?);
    }
    baseline.stop().await;
    drop(api);
    drop(stack);

    if wanted("P8") {
        report::section("P8 growth: latency against catalogue size, page 1 against a deep page");
        summary.insert("P8".into(), figures::p8(&plan, &admin_url, &api_binary).await?);
    }

    summary.insert("elapsed_s".into(), json!(started.elapsed().as_secs()));
    let summary = Value::Object(summary);
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("JSON"))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    report::print_table(&summary);
    println!("\nsummary: {}", path.display());
    if cli.write_docs {
        report::write_docs(&summary)?;
    }
    Ok(())
}

/// P1 on a throwaway cluster of the bench's own when the target server does not load
/// `pg_stat_statements` (restarting somebody's server to load it is not ours to do).
async fn p1_on_own_cluster(plan: &Plan, api_binary: &std::path::Path, why: &str) -> Result<Value, String> {
    println!("  the target server cannot count statements ({why}); using a cluster of our own");
    let scratch = tests::cluster::Scratch::new("bench-p1");
    let cluster = scratch.init("p1", "shared_preload_libraries = 'pg_stat_statements'");
    scratch.start(&cluster, &[]);
    let admin_url = cluster.admin_url();
    let stack = PgStack::create(&admin_url, &plan.growth[0]).await?;
    let api = ApiProcess::start(api_binary, &stack.app.url, plan.pool).await?;
    let mut figure = figures::p1(&admin_url, &stack, &api).await?;
    figure["server"] = json!("a throwaway cluster with pg_stat_statements");
    drop(api);
    drop(stack);
    Ok(figure)
}
