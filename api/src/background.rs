//! The tasks an instance runs besides serving requests, each a loop that logs its
//! failures and goes on: none of them may end the server, and no request waits for
//! one. Started once the application context exists, by [`start`].

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::context::AppContext;
use crate::throttle::Throttle;

/// Starts every background task the settings ask for.
pub fn start(ctx: &AppContext, throttle: Arc<Throttle>, settings: &Settings) {
    tokio::spawn(forget_idle_throttle_keys(throttle));
    if let Some(every) = settings.database.stats_refresh {
        tokio::spawn(refresh_stats_periodically(ctx.clone(), every));
    }
    tokio::spawn(maintain_audit_log_periodically(
        ctx.primary_pool().clone(),
        settings.database.audit_retention_months,
    ));
}

/// Drops the login limits of keys that have been quiet, every minute.
async fn forget_idle_throttle_keys(throttle: Arc<Throttle>) {
    let mut every_minute = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every_minute.tick().await;
        throttle.forget_idle();
    }
}

/// Runs the audit log's upkeep at start-up and then every hour: partitions for the
/// coming months exist well before they are needed, and expired months go. A failure
/// is logged and retried at the next run; requests never depend on it, because the
/// DEFAULT partition takes any write no month's partition covers.
async fn maintain_audit_log_periodically(db: DatabaseConnection, retention_months: u32) {
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        hourly.tick().await;
        match service::audit::maintain(&db, retention_months).await {
            Ok(actions) => {
                for action in actions {
                    tracing::info!(%action, "audit log upkeep");
                }
            }
            Err(err) => tracing::error!(error = ?err, "audit log upkeep failed; retrying in an hour"),
        }
    }
}

/// Refreshes the reader statistics every `every`, and drops the cached profiles that
/// show them. A failure is logged and retried sooner (after at most 10 s), and never
/// ends the task or the server.
async fn refresh_stats_periodically(ctx: AppContext, every: std::time::Duration) {
    let retry = every.min(std::time::Duration::from_secs(10));
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        wait = match service::stats::refresh(ctx.primary_pool()).await {
            Ok(done) => {
                let done = ctx.publish(done).await;
                tracing::info!(
                    readers = done.readers,
                    took_ms = done.took.as_millis() as u64,
                    "refreshed user_stats"
                );
                every
            }
            Err(err) => {
                tracing::error!(error = ?err, retry_in_secs = retry.as_secs(), "refreshing user_stats failed");
                retry
            }
        };
    }
}
