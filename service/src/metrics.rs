//! The service layer's measurements, through the `metrics` facade: with no recorder
//! installed (tools, most tests) they cost nothing; the API installs a Prometheus
//! recorder and serves them. Names and labels are listed in docs/operations.md.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

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

/// The help text of every series the service layer records, for the recorder's
/// `# HELP` lines; called once when the API installs its recorder.
pub fn describe() {
    describe_counter!(
        "bookworm_db_reads_total",
        "Reads that could go to a replica, by where they went and why"
    );
    describe_counter!(
        "bookworm_db_acquire_timeouts_total",
        "Waits for a pooled database connection that timed out"
    );
    describe_gauge!("bookworm_db_replica_up", "1 while the replica serves reads, else 0");
    describe_gauge!(
        "bookworm_db_replica_lag_bytes",
        Unit::Bytes,
        "How far the replica's replay is behind the primary's WAL"
    );
    describe_gauge!(
        "bookworm_db_replica_lag_seconds",
        Unit::Seconds,
        "How long ago the replica last replayed a change it had not yet"
    );
    describe_counter!(
        "bookworm_cache_requests_total",
        "Cached reads, by backend and hit, miss or bypass"
    );
    describe_counter!(
        "bookworm_cache_invalidations_total",
        "Cache tag versions replaced by writes"
    );
    describe_counter!("bookworm_cache_errors_total", "Cache calls that failed");
    describe_gauge!("bookworm_redis_up", "1 while Redis is usable, else 0");
    describe_counter!("bookworm_redis_outages_total", "Times Redis became unusable");
    describe_counter!(
        "bookworm_redis_errors_total",
        "Redis calls that failed or timed out, by call"
    );
    describe_gauge!("bookworm_password_hashes_in_flight", "Password hashes running now");
    describe_histogram!(
        "bookworm_password_hash_wait_seconds",
        Unit::Seconds,
        "How long a login or registration waited for a password-hashing slot"
    );
    describe_counter!(
        "bookworm_password_hash_rejections_total",
        "Logins and registrations refused with a 503 because no hashing slot freed up in time"
    );
}
