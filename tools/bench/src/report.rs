//! What the bench tells people: progress on the terminal, a table at the end,
//! `summary.json` for machines, and the generated half of docs/performance.md with its
//! SVG plots (plotters, SVG backend only: no fonts or system libraries needed).

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::{Value, json};

use crate::figures::{self, Plan};
use crate::stack;

const DOC: &str = "docs/performance.md";
const PLOTS: &str = "docs/performance";
const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// The workspace's target directory (`CARGO_TARGET_DIR`, else `target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

pub fn section(title: &str) {
    println!("\n== {title}");
}

pub async fn environment(admin_url: &str, plan: &Plan, api_binary: &Path) -> Result<Value, String> {
    let db = stack::connect(admin_url).await?;
    let postgres: String = stack::scalar(&db, "SELECT version()").await?;
    db.close().await.ok();
    let memory = stack::connect("sqlite::memory:").await?;
    let sqlite: String = stack::scalar(&memory, "SELECT 'SQLite ' || sqlite_version()").await?;
    memory.close().await.ok();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let command = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    Ok(json!({
        "mode": if plan.quick { "quick" } else { "full" },
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "kernel": command("uname", &["-r"]),
        "rustc": command("rustc", &["--version"]),
        "postgres": postgres,
        "sqlite": sqlite,
        "bookworm": env!("CARGO_PKG_VERSION"),
        "api_binary": api_binary.display().to_string(),
        "load": {
            "connections": plan.connections,
            "sweep": plan.sweep,
            "rounds": plan.rounds,
            "seconds_per_round": plan.duration.as_secs_f64(),
            "pool_size": plan.pool,
            "catalogue_books": figures::books(&plan.catalogue),
            "growth_books": plan.growth.iter().map(figures::books).collect::<Vec<_>>(),
            "generator": "in-process, keep-alive HTTP/1.1, closed loop, HDR histogram",
        },
    }))
}

pub fn print_environment(env: &Value) {
    println!(
        "Bookworm bench ({} run), {}",
        env["mode"].as_str().unwrap_or("?"),
        env["date"].as_str().unwrap_or("")
    );
    println!(
        "  machine:  {} cores, {} (Linux {})",
        env["cores"],
        env["cpu"].as_str().unwrap_or("?"),
        env["kernel"].as_str().unwrap_or("?")
    );
    println!(
        "  software: {}; {}; {}",
        env["rustc"].as_str().unwrap_or("?"),
        env["postgres"].as_str().unwrap_or("?"),
        env["sqlite"].as_str().unwrap_or("?")
    );
    let load = &env["load"];
    println!(
        "  load:     {} clients (sweep {}), {} rounds of {} s, pool of {}, {} books",
        load["connections"],
        load["sweep"],
        load["rounds"],
        load["seconds_per_round"],
        load["pool_size"],
        load["catalogue_books"]
    );
}

/// P2 at the headline count and, when the sweep went further, at its largest count,
/// with the share of the headline's throughput each server kept there.
fn p2_row(p2: &Value, num: impl Fn(&Value) -> String, met: impl Fn(Option<bool>) -> String) -> [String; 5] {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let at = |p: &Value| {
        format!(
            "{} clients {} vs {} req/s, p99 {} vs {} ms",
            p["connections"],
            num(&p["bookworm_rps"]),
            num(&p["baseline_rps"]),
            num(&p["bookworm_p99_ms"]),
            num(&p["baseline_p99_ms"])
        )
    };
    let headline_met = f(&p2["ratio"]) >= 0.7 && f(&p2["p99_ratio"]) <= 1.5;
    let most = &p2["most_clients"];
    if most.is_null() {
        return [
            "P2".into(),
            format!("detail, {}", at(p2)),
            "≥ 0.70×, p99 ≤ 1.5×".into(),
            format!("{}× / p99 {}×", num(&p2["ratio"]), num(&p2["p99_ratio"])),
            met(Some(headline_met)),
        ];
    }
    let percent = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{:.0} %", x * 100.0));
    [
        "P2".into(),
        format!(
            "detail, {}; {}; {} ÷ {} clients, same rounds: Bookworm {}, baseline {}",
            at(p2),
            at(most),
            most["connections"],
            p2["connections"],
            percent(&most["bookworm_share_of_headline"]),
            percent(&most["baseline_share_of_headline"]),
        ),
        format!(
            "≥ 0.70× at {}, ≥ 0.65× at {}; p99 ≤ 1.5×; {} ÷ {} ≥ 95 %",
            p2["connections"], most["connections"], most["connections"], p2["connections"]
        ),
        format!(
            "{}× / {}×, p99 {}× / {}×, {}",
            num(&p2["ratio"]),
            num(&most["ratio"]),
            num(&p2["p99_ratio"]),
            num(&most["p99_ratio"]),
            percent(&most["bookworm_share_of_headline"]),
        ),
        met(Some(
            headline_met
                && f(&most["ratio"]) >= 0.65
                && f(&most["p99_ratio"]) <= 1.5
                && f(&most["bookworm_share_of_headline"]) >= 0.95,
        )),
    ]
}

/// `(id, figure, value, target, met)` for the table and the docs.
fn rows(s: &Value) -> Vec<[String; 5]> {
    let num = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x}"));
    let met = |ok: Option<bool>| match ok {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "reported".to_owned(),
    };
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let p1 = &s["P1"];
    let detail = p1["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["endpoint"] == "books detail"))
        .cloned()
        .unwrap_or_default();
    let list = p1["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["endpoint"] == "books list"))
        .cloned()
        .unwrap_or_default();
    let p8 = &s["P8"];
    vec![
        [
            "P1".into(),
            format!(
                "statements (round trips): book detail {} ({}), book list 1/50 {}/{} ({}/{}), create book {} ({})",
                num(&detail["detail_statements"]),
                num(&detail["detail_round_trips"]),
                num(&list["page_1_statements"]),
                num(&list["page_50_statements"]),
                num(&list["page_1_round_trips"]),
                num(&list["page_50_round_trips"]),
                num(&p1["create_book"]["statements"]),
                num(&p1["create_book"]["round_trips"]),
            ),
            "equal for 1 and 50; no overhead statements; round trips ≤ statements + 1".into(),
            "-".into(),
            met(p1["holds"].as_bool()),
        ],
        p2_row(&s["P2"], num, met),
        [
            "P3".into(),
            format!(
                "list of 50: {} vs {} (N+1 {}) req/s",
                num(&s["P3"]["bookworm_rps"]),
                num(&s["P3"]["baseline_rps"]),
                num(&s["P3"]["n_plus_one_rps"])
            ),
            "≥ 0.60×; ≥ 5× N+1".into(),
            format!(
                "{}× / {}× N+1",
                num(&s["P3"]["ratio"]),
                num(&s["P3"]["ratio_vs_n_plus_one"])
            ),
            met(Some(
                f(&s["P3"]["ratio"]) >= 0.6 && f(&s["P3"]["ratio_vs_n_plus_one"]) >= 5.0,
            )),
        ],
        [
            "P4".into(),
            format!(
                "detail {} req/s vs pgbench -S {} tps",
                num(&s["P4"]["bookworm_rps"]),
                num(&s["P4"]["pgbench_tps"])
            ),
            "reported".into(),
            format!("{}×", num(&s["P4"]["ratio"])),
            met(None),
        ],
        [
            "P5".into(),
            format!(
                "seed {} vs INSERT {} vs COPY {} rows/s",
                num(&s["P5"]["seed_rows_per_s"]),
                num(&s["P5"]["insert_rows_per_s"]),
                num(&s["P5"]["copy_rows_per_s"])
            ),
            "≥ 0.80× COPY".into(),
            format!("{}×", num(&s["P5"]["ratio_vs_copy"])),
            met(Some(f(&s["P5"]["ratio_vs_copy"]) >= 0.8)),
        ],
        [
            "P6".into(),
            format!(
                "detail: uncached {} vs in-process {} vs Redis {} req/s; hits {} / {}",
                num(&s["P6"]["uncached_rps"]),
                num(&s["P6"]["in_process_rps"]),
                num(&s["P6"]["redis_rps"]),
                num(&s["P6"]["in_process_hit_ratio"]),
                num(&s["P6"]["redis_hit_ratio"])
            ),
            "reported".into(),
            format!(
                "{}× / {}×",
                num(&s["P6"]["in_process_ratio"]),
                num(&s["P6"]["redis_ratio"])
            ),
            met(None),
        ],
        [
            "P7".into(),
            format!(
                "idle {} MiB, under load {} MiB",
                num(&s["P7"]["idle_mib"]),
                num(&s["P7"]["under_load_mib"])
            ),
            "≤ 64 MiB".into(),
            format!("{} MiB", num(&s["P7"]["under_load_mib"])),
            met(Some(f(&s["P7"]["under_load_mib"]) <= 64.0)),
        ],
        [
            "P8".into(),
            format!(
                "growth {} books: detail {}×, list {}×; deep page {}× page 1",
                p8["sizes"]
                    .as_array()
                    .map(|a| a.iter().map(|s| num(&s["books"])).collect::<Vec<_>>().join("/"))
                    .unwrap_or_default(),
                num(&p8["detail_p50_growth"]),
                num(&p8["list_p50_growth"]),
                num(&p8["deep_page_vs_first"])
            ),
            "≤ 1.5×".into(),
            format!(
                "{}× / {}× / {}×",
                num(&p8["detail_p50_growth"]),
                num(&p8["list_p50_growth"]),
                num(&p8["deep_page_vs_first"])
            ),
            met(Some(
                f(&p8["detail_p50_growth"]) <= 1.5
                    && f(&p8["list_p50_growth"]) <= 1.5
                    && f(&p8["deep_page_vs_first"]) <= 1.5,
            )),
        ],
        [
            "P9".into(),
            format!(
                "SQLite detail {} vs PostgreSQL {} req/s; list {} vs {}",
                num(&s["P9"]["detail_sqlite_rps"]),
                num(&s["P9"]["detail_postgres_rps"]),
                num(&s["P9"]["list_sqlite_rps"]),
                num(&s["P9"]["list_postgres_rps"])
            ),
            "detail ≥ 0.8×".into(),
            format!("{}×", num(&s["P9"]["detail_ratio"])),
            met(Some(f(&s["P9"]["detail_ratio"]) >= 0.8)),
        ],
        [
            "P10".into(),
            format!(
                "sign-in storm: idle {} MiB, peak {} MiB, {} MiB {} s later; login p99 {} ms",
                num(&s["P10"]["idle_mib"]),
                num(&s["P10"]["peak_mib"]),
                num(&s["P10"]["after_mib"]),
                num(&s["P10"]["after_s"]),
                num(&s["P10"]["login_p99_ms"])
            ),
            "≤ 128 MiB peak".into(),
            format!("{} MiB", num(&s["P10"]["peak_mib"])),
            met(Some(f(&s["P10"]["peak_mib"]) <= 128.0)),
        ],
        [
            "P11".into(),
            format!(
                "shelf 1/16 clients {}/{}×, review {}/{}× the baseline; SQLite writes p99 {} vs PostgreSQL {} ms",
                num(&s["P11"]["shelf_1_ratio"]),
                num(&s["P11"]["shelf_16_ratio"]),
                num(&s["P11"]["review_1_ratio"]),
                num(&s["P11"]["review_16_ratio"]),
                num(&s["P11"]["sqlite_vs_postgres_p99_ms"]),
                num(&s["P11"]["sqlite_vs_postgres_other_p99_ms"]),
            ),
            "≥ 0.60×; SQLite p99 ≤ 2× PostgreSQL's".into(),
            format!(
                "{}× / {}× p99",
                num(&s["P11"]["shelf_16_ratio"]),
                num(&s["P11"]["sqlite_p99_over_postgres"])
            ),
            met(Some(
                ["shelf_1_ratio", "shelf_16_ratio", "review_1_ratio", "review_16_ratio"]
                    .iter()
                    .all(|k| f(&s["P11"][*k]) >= 0.60)
                    && f(&s["P11"]["sqlite_p99_over_postgres"]) <= 2.0,
            )),
        ],
        [
            "P12".into(),
            format!(
                "90 % reads, 10 % writes: {} vs {} req/s, p99 {} vs {} ms",
                num(&s["P12"]["mixed_rps"]),
                num(&s["P12"]["mixed_other_rps"]),
                num(&s["P12"]["mixed_p99_ms"]),
                num(&s["P12"]["mixed_other_p99_ms"]),
            ),
            "reported".into(),
            format!("{}×", num(&s["P12"]["mixed_ratio"])),
            met(None),
        ],
    ]
}

/// The rows of the figures this run measured.
fn measured_rows(s: &Value) -> Vec<[String; 5]> {
    rows(s)
        .into_iter()
        .filter(|[id, ..]| !s[id.as_str()].is_null())
        .collect()
}

pub fn print_table(summary: &Value) {
    section("summary");
    println!("{:<3} {:<18} {:<28} {:<8} figure", "id", "ratio", "target", "met");
    for [id, figure, target, ratio, met] in measured_rows(summary) {
        println!("{id:<3} {ratio:<18} {target:<28} {met:<8} {figure}");
    }
}

/// Rewrites the part of docs/performance.md between the bench markers, and the plots.
pub fn write_docs(summary: &Value) -> Result<(), String> {
    std::fs::create_dir_all(PLOTS).map_err(|e| e.to_string())?;
    plot_sweep(summary, "throughput", "requests per second", |s| {
        s["rps_median"].as_f64()
    })?;
    plot_sweep(summary, "p99", "p99 latency (ms)", |s| s["p99_ms_median"].as_f64())?;
    plot_growth(summary)?;
    let doc = std::fs::read_to_string(DOC).map_err(|e| format!("{DOC}: {e}"))?;
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!("{DOC} lacks the {BEGIN} … {END} markers"));
    };
    let env = &summary["environment"];
    let mut generated = format!(
        "{BEGIN}\n<!-- Generated by `cargo run --release -p bench -- --write-docs`; edits here are overwritten. -->\n\n\
         Measured {} on {} cores ({}), {}, {}. Load: {} keep-alive clients, {} interleaved rounds of {} s per \
         contender, pools of {} connections, a catalogue of {} books; the API ran as the restricted role with \
         row-level security on, logging at its default level.\n\n\
         | id | figure | target | ratio | met |\n|---|---|---|---|---|\n",
        env["date"].as_str().unwrap_or("?"),
        env["cores"],
        env["cpu"].as_str().unwrap_or("?"),
        env["postgres"]
            .as_str()
            .unwrap_or("?")
            .split(" on ")
            .next()
            .unwrap_or("?"),
        env["rustc"].as_str().unwrap_or("?"),
        env["load"]["connections"],
        env["load"]["rounds"],
        env["load"]["seconds_per_round"],
        env["load"]["pool_size"],
        env["load"]["catalogue_books"],
    );
    for [id, figure, target, ratio, met] in measured_rows(summary) {
        generated.push_str(&format!("| {id} | {figure} | {target} | {ratio} | {met} |\n"));
    }
    generated.push_str("\nStatements and round trips per request (P1), page of 1 / page of 50:\n\n| endpoint | statements | round trips |\n|---|---|---|\n");
    for e in summary["P1"]["endpoints"].as_array().into_iter().flatten() {
        let pair = |a: &str, b: &str| match (e.get(a), e.get(b)) {
            (Some(x), Some(y)) => format!("{x} / {y}"),
            _ => e
                .get(a.replace("page_1", "detail"))
                .map_or("-".into(), |x| x.to_string()),
        };
        generated.push_str(&format!(
            "| {} `{}` | {} | {} |\n",
            e["endpoint"].as_str().unwrap_or("?"),
            e["path"].as_str().unwrap_or("?"),
            pair("page_1_statements", "page_50_statements"),
            pair("page_1_round_trips", "page_50_round_trips"),
        ));
    }
    generated.push_str(
        "\n![Throughput by client count](performance/throughput.svg)\n\n\
         ![p99 latency by client count](performance/p99.svg)\n\n\
         ![Latency against catalogue size](performance/growth.svg)\n",
    );
    generated.push_str(END);
    let doc = format!("{}{}{}", &doc[..begin], generated, &doc[end + END.len()..]);
    std::fs::write(DOC, doc).map_err(|e| format!("{DOC}: {e}"))?;
    println!("wrote {DOC} and {PLOTS}/*.svg");
    Ok(())
}

type Line = (String, Vec<(f64, f64)>);

fn plot_sweep(summary: &Value, name: &str, y_label: &str, value: impl Fn(&Value) -> Option<f64>) -> Result<(), String> {
    let mut lines: Vec<Line> = Vec::new();
    for endpoint in ["detail", "list"] {
        for who in ["bookworm", "baseline"] {
            let points = summary["concurrency_sweep"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| Some((s["connections"].as_f64()?, value(&s[endpoint][who])?)))
                .collect();
            let label = format!(
                "{who}, {}",
                if endpoint == "detail" {
                    "GET /books/{id}"
                } else {
                    "GET /books?limit=50"
                }
            );
            lines.push((label, points));
        }
    }
    chart(
        &format!("{PLOTS}/{name}.svg"),
        &format!("{y_label} by client count"),
        "clients",
        y_label,
        &lines,
        true,
    )
}

fn plot_growth(summary: &Value) -> Result<(), String> {
    let sizes = summary["P8"]["sizes"].as_array().cloned().unwrap_or_default();
    let line = |key: &str, label: &str| -> Line {
        (
            label.to_owned(),
            sizes
                .iter()
                .filter_map(|s| Some((s["books"].as_f64()?, s[key].as_f64()?)))
                .collect(),
        )
    };
    let lines = vec![
        line("detail_p50_ms", "detail p50"),
        line("detail_p99_ms", "detail p99"),
        line("list_page_1_p50_ms", "list page 1 p50"),
        line("list_deep_page_p50_ms", "list deep page p50"),
    ];
    chart(
        &format!("{PLOTS}/growth.svg"),
        "latency against catalogue size (1 client)",
        "books",
        "ms",
        &lines,
        true,
    )
}

fn chart(path: &str, title: &str, x_label: &str, y_label: &str, lines: &[Line], log_x: bool) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{path}: {e}");
    let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
    let (x_min, x_max) = xs.fold((f64::INFINITY, 0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let y_max = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0f64, f64::max)
        * 1.15;
    if !x_min.is_finite() || y_max <= 0.0 {
        return Err(format!("{path}: nothing to plot"));
    }
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let colours = [BLUE, RED, GREEN, MAGENTA];
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| err(&e))?;
            for (i, (label, points)) in lines.iter().enumerate() {
                let colour = colours[i % colours.len()];
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| err(&e))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| err(&e))?;
        }};
    }
    if log_x && x_max > x_min {
        draw!(
            builder
                .build_cartesian_2d((x_min..x_max).log_scale(), 0f64..y_max)
                .map_err(|e| err(&e))?
        );
    } else {
        draw!(
            builder
                .build_cartesian_2d(x_min * 0.5..x_max * 1.5, 0f64..y_max)
                .map_err(|e| err(&e))?
        );
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
