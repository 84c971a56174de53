//! Caching as HTTP sees it. The public detail reads go through the shared cache
//! (`service::cache`) and answer with a strong `ETag` and `Cache-Control: no-cache`:
//! anyone may keep the body, but must revalidate, and `If-None-Match` makes that a
//! bodiless `304`. Every other response is `no-store` unless its handler says
//! otherwise: lists, search and errors change with any write, and a max-age would
//! serve them stale with nothing to invalidate it.
//!
//! The ETag is a hash of the body, not a version: two instances, or the cache and
//! the database, agree on it without sharing anything.

use actix_web::dev::Payload;
use actix_web::http::header::{
    self, CACHE_CONTROL, CacheControl, CacheDirective, EntityTag, Header, HeaderValue, IfNoneMatch,
};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use service::ServiceError;
use service::cache::Key;
use service::replicas::Lsn;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, IntoResponses};

use crate::context::AppContext;
use crate::extract::ReplicaRead;
use crate::problem::ApiError;

/// A public detail read: from the cache when it holds the current body, else loaded
/// (where `service::replicas` routes it) and rendered once for every reader after.
pub async fn cached_detail<V: Serialize>(
    ctx: &AppContext,
    req: &HttpRequest,
    key: Key,
    token: Option<Lsn>,
    load: impl AsyncFn(&service::database::Pinned<'_>) -> Result<V, ServiceError>,
) -> Result<HttpResponse, ApiError> {
    let cached = ctx
        .cache
        .get_or_load(key, token, async |at| {
            let view = ctx.databases.read(at, load).await?;
            serde_json::to_vec(&view).map_err(|e| ServiceError::Internal(format!("rendering a cached body: {e}")))
        })
        .await?;
    let etag = strong_etag(&cached.body);
    let revalidate = CacheControl(vec![CacheDirective::NoCache]);
    if not_modified(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header(header::ETag(etag))
            .insert_header(revalidate)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(header::ETag(etag))
        .insert_header(revalidate)
        .content_type(mime_json())
        .body(web::Bytes::from_owner(cached.body)))
}

fn mime_json() -> HeaderValue {
    HeaderValue::from_static("application/json")
}

/// The first half of the body's SHA-256, in hex: one formatting of the digest, not
/// one allocation per byte.
fn strong_etag(body: &[u8]) -> EntityTag {
    let mut hex = format!("{:x}", Sha256::digest(body));
    hex.truncate(32);
    EntityTag::new_strong(hex)
}

/// RFC 9110 §13.1.2: `If-None-Match` compares weakly, and `*` matches any current body.
fn not_modified(req: &HttpRequest, etag: &EntityTag) -> bool {
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(etag)),
        Err(_) => false,
    }
}

/// Responses no handler gave a `Cache-Control` get `no-store`.
pub fn default_no_store(headers: &mut header::HeaderMap) {
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Everything a cached detail handler takes from its request: the context, the
/// request (for `If-None-Match`), the consistency token, and the caller's token
/// checked (a bad one is a 401, as on every read). One extractor, so each detail
/// handler is its path and its load.
pub struct DetailRead {
    read: ReplicaRead,
    req: HttpRequest,
}

impl FromRequest for DetailRead {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let read = ReplicaRead::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move { Ok(DetailRead { read: read.await?, req }) })
    }
}

impl DetailRead {
    /// Answers with `key`'s body, from the cache or from `load`.
    pub async fn serve<V: Serialize>(
        self,
        key: Key,
        load: impl AsyncFn(&service::database::Pinned<'_>) -> Result<V, ServiceError>,
    ) -> Result<HttpResponse, ApiError> {
        cached_detail(self.read.context(), &self.req, key, self.read.token(), load).await
    }
}

/// Declares a cached detail read: `GET` of one thing by id, served from the cache when
/// it holds the current body, with its OpenAPI operation. Every such read answers the
/// same way ([`DetailRead`], [`NotModified`], a strong `ETag`), so only its name,
/// path, view and load differ:
///
/// The calling module imports actix-web's `get` (utoipa recognises the route by that
/// name) and the `Key` it names.
///
/// ```ignore
/// cached_detail_route!(
///     /// Get a book            (the operation's summary, then its description)
///     get, "get_book", "books", "/books/{id}", BookDetailView,
///     "The book with author, categories and rating", Key::Book,
///     |db, id| books::get(db, id).await.map(BookDetailView::from));
/// ```
#[macro_export]
macro_rules! cached_detail_route {
    ($(#[doc = $doc:expr])* $name:ident, $operation:tt, $tag:tt, $path:tt, $view:ident, $description:tt, $key:path,
     |$db:ident, $id:ident| $load:expr) => {
        $(#[doc = $doc])*
        #[utoipa::path(operation_id = $operation, tag = $tag,
            params(("id" = Uuid, Path), ConsistencyHeader, $crate::http_cache::IfNoneMatchHeader),
            responses(
                (status = 200, body = $view, description = $description,
                    headers(("ETag" = String, description = "Strong validator of this body"),
                            ("Cache-Control" = String, description = "`no-cache`: keep it, revalidate before use"))),
                $crate::http_cache::NotModified, $crate::problem::responses::BadConsistency,
                $crate::problem::responses::BadToken, $crate::problem::responses::NotFound))]
        #[get($path)]
        pub async fn $name(
            read: $crate::http_cache::DetailRead,
            id: actix_web::web::Path<uuid::Uuid>,
        ) -> $crate::problem::Reply {
            let $id = id.into_inner();
            read.serve($key($id), async |$db| $load).await
        }
    };
}

/// A cached detail read's `304`, for its OpenAPI responses.
#[derive(IntoResponses)]
pub enum NotModified {
    #[response(
        status = 304,
        description = "Your copy (the ETag you sent) is current",
        headers(
            ("ETag" = String, description = "The current body's strong validator"),
            ("Cache-Control" = String, description = "`no-cache`: keep it, revalidate before use"),
        )
    )]
    NotModified,
}

/// How `If-None-Match` appears in the OpenAPI document of every cached read.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchHeader {
    /// The `ETag` of a copy you hold: if it is still current, the answer is `304` with
    /// no body.
    #[param(rename = "If-None-Match")]
    pub etag: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::strong_etag;

    /// Instances of two releases behind one load balancer must agree on a body's ETag.
    #[test]
    fn the_etag_is_the_first_half_of_the_bodys_sha256_in_lowercase_hex() {
        assert_eq!(strong_etag(b"").tag(), "e3b0c44298fc1c149afbf4c8996fb924");
        assert!(!strong_etag(b"").weak);
        assert_eq!(strong_etag(b"abc").tag(), "ba7816bf8f01cfea414140de5dae2223");
    }
}
