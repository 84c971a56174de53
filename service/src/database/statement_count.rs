//! Counting the statements a request runs, for the N+1 tests, the `x-statement-count`
//! header and the per-route histogram. A task-local counter rather than a global one:
//! concurrent requests each see only their own statements.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use sea_orm::DatabaseConnection;

tokio::task_local! {
    static STATEMENTS: Arc<AtomicU32>;
}

/// Makes `db` (and every clone made afterwards) count each statement it runs into
/// the counter of the task running it, if [`with_statement_count`] set one up.
/// SeaORM calls the metric callback for every statement, inside transactions and
/// loaders too, so the count is exact; this is how the N+1 tests see queries.
pub fn count_statements(db: &mut DatabaseConnection) {
    db.set_metric_callback(|_| count_one());
}

/// Counts one statement for the task running it.
pub(crate) fn count_one() {
    let _ = STATEMENTS.try_with(|count| count.fetch_add(1, AtomicOrdering::Relaxed));
}

/// Runs `work` with a fresh statement counter and returns its output with the count.
pub async fn with_statement_count<F: Future>(work: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let output = STATEMENTS.scope(counter.clone(), work).await;
    (output, counter.load(AtomicOrdering::Relaxed))
}
