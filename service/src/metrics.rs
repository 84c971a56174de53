//! The service layer's measurements, through the `metrics` facade: with no recorder
//! installed (tools, most tests) they cost nothing; the API installs a Prometheus
//! recorder and serves them. Names and labels are listed in docs/operations.md.

use crate::cache::Backend;
use crate::replicas::{ReplicaState, Route};

pub fn read_routed(route: Route) {
    metrics::counter!("bookworm_db_reads_total", "route" => route.as_str()).increment(1);
}

pub fn replica_state(name: &str, state: &ReplicaState) {
    let replica = name.to_owned();
    metrics::gauge!("bookworm_db_replica_up", "replica" => replica.clone()).set(if state.up { 1.0 } else { 0.0 });
    metrics::gauge!("bookworm_db_replica_lag_bytes", "replica" => replica.clone()).set(state.lag_bytes as f64);
    metrics::gauge!("bookworm_db_replica_lag_seconds", "replica" => replica).set(state.lag.as_secs_f64());
}

/// `result`: `hit`, `miss`, or `bypass` (Redis unreachable: read from the database).
pub fn cache_request(backend: Backend, result: &'static str) {
    metrics::counter!("bookworm_cache_requests_total", "backend" => backend.as_str(), "result" => result).increment(1);
}

pub fn cache_invalidations(backend: Backend, tags: usize) {
    metrics::counter!("bookworm_cache_invalidations_total", "backend" => backend.as_str()).increment(tags as u64);
}

pub fn cache_error(backend: Backend) {
    metrics::counter!("bookworm_cache_errors_total", "backend" => backend.as_str()).increment(1);
}
