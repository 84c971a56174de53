//! The service layer's measurements, through the `metrics` facade: with no recorder
//! installed (tools, most tests) they cost nothing; the API installs a Prometheus
//! recorder and serves them. Series recorded from more than one place are recorded
//! here; the rest where they happen (the primary follower, the Redis link, the
//! password-hashing budget, the pool's acquire timeouts). [`describe`] gives every one
//! of them its help text, and docs/operations.md lists them with their labels.
//!
//! The functions take their labels as plain values, so this module depends on none
//! of the modules it measures.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// `route`: where a read that could go to a replica went, and why (`replicas::Route`).
pub fn read_routed(route: &'static str) {
    metrics::counter!("bookworm_db_reads_total", "route" => route).increment(1);
}

pub fn replica_state(name: &str, up: bool, lag_bytes: u64, lag: Duration) {
    let replica = name.to_owned();
    metrics::gauge!("bookworm_db_replica_up", "replica" => replica.clone()).set(if up { 1.0 } else { 0.0 });
    metrics::gauge!("bookworm_db_replica_lag_bytes", "replica" => replica.clone()).set(lag_bytes as f64);
    metrics::gauge!("bookworm_db_replica_lag_seconds", "replica" => replica).set(lag.as_secs_f64());
}

/// `backend`: `local` or `redis`; `result`: `hit`, `miss`, or `bypass` (Redis
/// unreachable: read from the database).
pub fn cache_request(backend: &'static str, result: &'static str) {
    metrics::counter!("bookworm_cache_requests_total", "backend" => backend, "result" => result).increment(1);
}

pub fn cache_invalidations(backend: &'static str, tags: usize) {
    metrics::counter!("bookworm_cache_invalidations_total", "backend" => backend).increment(tags as u64);
}

pub fn cache_error(backend: &'static str) {
    metrics::counter!("bookworm_cache_errors_total", "backend" => backend).increment(1);
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
    describe_gauge!(
        "bookworm_db_primary",
        "With a multi-host DATABASE_URL: 1 for the host the pool writes to, 0 for the others"
    );
    describe_counter!(
        "bookworm_db_primary_changes_total",
        "Times the pool followed the primary to another host"
    );
    describe_gauge!(
        "bookworm_db_primary_changed_at_seconds",
        Unit::Seconds,
        "When the pool last followed the primary to another host, as a Unix time"
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
