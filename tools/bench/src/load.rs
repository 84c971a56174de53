//! The load generator: `connections` keep-alive HTTP/1.1 clients, each sending its
//! next request as soon as the last one is answered (a closed loop, like wrk), for a
//! fixed time. Latencies go into an HDR histogram (microseconds, 3 significant
//! figures), so p99 is exact to the histogram's precision rather than a sampled guess.
//!
//! One `reqwest::Client` per connection, each with a one-connection pool: the load is
//! spread over exactly `connections` sockets and never opens new ones mid-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
}

impl Measured {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn p50_ms(&self) -> f64 {
        self.quantile_ms(0.50)
    }

    pub fn p99_ms(&self) -> f64 {
        self.quantile_ms(0.99)
    }

    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One request of a workload.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: reqwest::Method,
    pub path: String,
    /// Sent as `Authorization: Bearer …`.
    pub token: Option<Arc<str>>,
    pub body: Option<serde_json::Value>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Self {
        Req {
            method: reqwest::Method::GET,
            path: path.into(),
            token: None,
            body: None,
        }
    }
}

/// What a client sends: `work(worker, workers, n)` is worker `worker`'s `n`th request
/// of `workers` in all.
pub type Workload = Arc<dyn Fn(usize, usize, u64) -> Req + Send + Sync>;

/// GETs of `paths`, cycled, each worker starting at a different offset.
pub fn gets(paths: Arc<Vec<String>>) -> Workload {
    Arc::new(move |worker, workers, n| {
        let start = worker * paths.len() / workers.max(1);
        Req::get(paths[(start + n as usize) % paths.len()].as_str())
    })
}

/// Sends GETs to `paths` (cycled, each connection starting at a different offset) on
/// `base` for `duration`, over `connections` connections.
pub async fn run(base: &str, paths: Arc<Vec<String>>, connections: usize, duration: Duration) -> Measured {
    run_workload(base, gets(paths), connections, duration).await
}

/// Sends `work`'s requests on `base` for `duration`, over `connections` connections.
/// Any answer but a 2xx is an error.
pub async fn run_workload(base: &str, work: Workload, connections: usize, duration: Duration) -> Measured {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for worker in 0..connections {
        let (base, work) = (base.to_owned(), work.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut histogram = histogram();
            let (mut requests, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let req = work(worker, connections, requests);
                let mut request = client.request(req.method, format!("{base}{}", req.path));
                if let Some(token) = &req.token {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = &req.body {
                    request = request.json(body);
                }
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                histogram.saturating_record(sent.elapsed().as_micros() as u64);
                requests += 1;
                errors += u64::from(!ok);
            }
            (requests, errors, histogram)
        }));
    }
    let mut total = Measured {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        histogram: histogram(),
    };
    for task in tasks {
        let (requests, errors, histogram) = task.await.expect("a load worker panicked");
        total.requests += requests;
        total.errors += errors;
        total.histogram.add(histogram).expect("histograms with the same bounds");
    }
    total.elapsed = started.elapsed();
    total
}

/// `count` sequential GETs of `paths` in turn, one connection: latency without
/// contention.
pub async fn sequential(base: &str, paths: &[String], count: usize) -> Measured {
    let client = client();
    let mut histogram = histogram();
    let mut errors = 0;
    let started = Instant::now();
    for path in paths.iter().cycle().take(count) {
        let sent = Instant::now();
        let ok = match client.get(format!("{base}{path}")).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        histogram.saturating_record(sent.elapsed().as_micros() as u64);
        errors += u64::from(!ok);
    }
    Measured {
        requests: count as u64,
        errors,
        elapsed: started.elapsed(),
        histogram,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A bearer token for `email`, from `POST /auth/login`.
pub async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> Result<String, String> {
    let login: serde_json::Value = client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(login["token"].as_str().ok_or("login gave no token")?.to_owned())
}

/// The body of `GET base+path`, or why not.
pub async fn body(base: &str, path: &str) -> Result<String, String> {
    let response = client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{path}: {status}: {text}"));
    }
    Ok(text)
}
