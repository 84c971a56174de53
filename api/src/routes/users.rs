//! `GET /users/{id}`: a reader's public profile with their review statistics.

use actix_web::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use service::cache::Key;
use service::stats;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::cached_detail_route;
use crate::extract::ConsistencyHeader;

routes!(get);

pub const GET_STATEMENTS: u32 = 2;

/// What anyone may see of a reader. No email, no phone.
#[derive(Serialize, ToSchema)]
pub struct PublicProfileView {
    pub id: Uuid,
    pub display_name: String,
    pub bio: Option<String>,
    pub member_since: DateTime<Utc>,
    /// From the statistics, refreshed periodically (`STATS_REFRESH_SECS`): may lag
    /// recent reviews. True as of `as_of`.
    pub review_count: i64,
    pub average_rating: Option<f64>,
    pub last_review_at: Option<DateTime<Utc>>,
    /// When the statistics were last computed; `null` before the first refresh.
    pub as_of: Option<DateTime<Utc>>,
}

cached_detail_route!(
    /// Get a reader's public profile
    ///
    /// A reader's display name, bio and reading statistics, cacheable: revalidate with If-None-Match.
    get,
    "get_user",
    "reviews",
    "/users/{id}",
    PublicProfileView,
    "The reader's public profile and statistics",
    Key::User,
    |db, id| stats::public_profile(db, id).await.map(PublicProfileView::from)
);

impl From<stats::PublicProfile> for PublicProfileView {
    fn from(p: stats::PublicProfile) -> Self {
        PublicProfileView {
            id: p.user.id,
            display_name: p.profile.as_ref().map(|pr| pr.display_name.clone()).unwrap_or_default(),
            bio: p.profile.and_then(|pr| pr.bio),
            member_since: p.user.created_at,
            review_count: p.stats.review_count,
            average_rating: p.stats.average_rating,
            last_review_at: p.stats.last_review_at,
            as_of: p.stats.as_of,
        }
    }
}
