//! The two extractors every handler reads requests with: [`Json`] for bodies and
//! [`Query`] for query strings. They apply, once for the whole API, the rules that hold
//! for every text a client sends, before any handler or domain type sees it:
//!
//! - no NUL (U+0000) anywhere: PostgreSQL refuses it in `text` (a 500 waiting to
//!   happen) and SQLite stores it, truncating the value for C-string readers;
//! - a body is a JSON object: serde would otherwise fill a struct from an array by
//!   position (`["name","bio"]`), which no client means to send;
//! - a whole-number float is a number like any other: `"rating": 4.0` is the integer
//!   4, as JSON Schema (and so the OpenAPI document) defines integers.
//!
//! Per-handler checks were rejected: one forgotten field would be enough. Field rules
//! that depend on meaning (lengths, formats) stay in the domain types.
//!
//! A body is read only once the request's authorisation extractors have all said
//! yes (`auth::verdicts`), so its errors never answer in their place.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use service::ServiceError;
use service::pagination::PageRequest;
use service::replicas::Lsn;

use crate::auth::Caller;
use crate::context::AppContext;
use crate::problem::{ApiError, FieldError};

/// `into_inner` and `Deref` for an extractor that wraps the value it extracts, as
/// actix-web's own do.
macro_rules! wrapper {
    ($name:ident) => {
        impl<T> $name<T> {
            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> std::ops::Deref for $name<T> {
            type Target = T;

            fn deref(&self) -> &T {
                &self.0
            }
        }
    };
}

const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// A JSON object body, checked as the module describes, then deserialized into `T`.
pub struct Json<T>(pub T);
wrapper!(Json);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // The raw JSON extractor applies the body limit and content type (`JsonConfig`).
        let raw = web::Json::<Value>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            // Who may call decides first: see `auth`.
            crate::auth::verdicts(&req).await?;
            let value = raw.await?.into_inner();
            Ok(Json(parse_body(value)?))
        })
    }
}

fn parse_body<T: DeserializeOwned>(mut value: Value) -> Result<T, ApiError> {
    let Value::Object(object) = &mut value else {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    };
    let mut errors = Vec::new();
    normalise_object(None, object, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::BadField(errors));
    }
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Collects every NUL (naming the field by its path) and turns whole floats to integers.
fn normalise(path: &str, value: &mut Value, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(text) if text.contains('\0') => errors.push(FieldError {
            field: path.to_owned(),
            message: NUL_MESSAGE.into(),
        }),
        Value::Number(number) => {
            if let Some(whole) = whole_number(number) {
                *number = whole;
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                normalise(&format!("{path}[{index}]"), item, errors);
            }
        }
        Value::Object(fields) => normalise_object(Some(path), fields, errors),
        _ => {}
    }
}

/// Like [`normalise`] for each field of an object, whose own path is `parent` (`None`
/// for the body itself); field names are checked too.
fn normalise_object(parent: Option<&str>, fields: &mut Map<String, Value>, errors: &mut Vec<FieldError>) {
    for (key, field) in fields.iter_mut() {
        let path = match parent {
            Some(parent) => format!("{parent}.{key}"),
            None => key.clone(),
        };
        if key.contains('\0') {
            errors.push(FieldError {
                field: path.clone(),
                message: "a field name must not contain the NUL character".into(),
            });
        }
        normalise(&path, field, errors);
    }
}

fn whole_number(number: &Number) -> Option<Number> {
    let float = number.as_f64().filter(|_| number.is_f64())?;
    let in_range = float.fract() == 0.0 && float >= i64::MIN as f64 && float < i64::MAX as f64;
    in_range.then(|| Number::from(float as i64))
}

/// A query string without NUL characters, then deserialized into `T` (`QueryConfig`
/// turns malformed ones into a 400 problem).
pub struct Query<T>(pub T);
wrapper!(Query);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        std::future::ready(match parameter_with_nul(req.query_string()) {
            Some(name) => Err(ApiError::BadField(vec![FieldError {
                field: name,
                message: NUL_MESSAGE.into(),
            }])
            .into()),
            None => web::Query::<T>::from_request(req, payload)
                .into_inner()
                .map(|q| Query(q.into_inner())),
        })
    }
}

/// `limit` and `cursor`, which every list takes, as the OpenAPI document shows them.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1 to 100 (default 20; larger values are capped).
    #[param(minimum = 1)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page of the same list, in the same order.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

/// The page a list asks for, parsed once from `limit` and `cursor` ([`PageQuery`]) by
/// the same rules as every query string ([`Query`]); the list's own filters are a
/// `Query` of their own beside it.
pub struct Page(pub PageRequest);

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let page = Query::<PageQuery>::from_request(req, payload)
            .into_inner()
            .and_then(|query| {
                PageRequest::parse(query.limit, query.cursor.as_deref())
                    .map(Page)
                    .map_err(|e| ApiError::from(e).into())
            });
        std::future::ready(page)
    }
}

/// The header a client sends back: the `X-Consistency-Token` of its last write.
pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

/// How the token appears in the OpenAPI document of every read that honours it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ConsistencyHeader {
    /// The `X-Consistency-Token` of your last write's response. With it, the read
    /// reflects that write even when served by a read replica.
    #[param(rename = "X-Consistency-Token", pattern = "^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")]
    pub token: Option<String>,
}

/// The consistency token the client sent, if any (see `service::replicas`): a read
/// with one is served only by a replica that has replayed that far, or the primary.
pub struct Consistency(pub Option<Lsn>);

impl FromRequest for Consistency {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req.headers().get(CONSISTENCY_TOKEN).map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<Lsn>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "X-Consistency-Token must be the X-Consistency-Token of an earlier response, like 0/3000148"
                            .into(),
                    )
                })
        });
        std::future::ready(match token.transpose() {
            Ok(token) => Ok(Consistency(token)),
            Err(err) => Err(err.into()),
        })
    }
}

/// What a read that may go to a replica takes from its request: the context, the
/// consistency token, and the caller's bearer token checked (a bad one is a 401, as
/// on every read). [`run`](Self::run) sends the work where `service::replicas` routes
/// it. One extractor, so each such handler is its inputs and its query.
pub struct ReplicaRead {
    ctx: web::Data<AppContext>,
    token: Option<Lsn>,
}

impl FromRequest for ReplicaRead {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(web::Data<AppContext>, Consistency, Caller)>::from_request(req, payload);
        Box::pin(async move {
            let (ctx, consistency, _caller) = parts.await?;
            Ok(ReplicaRead {
                ctx,
                token: consistency.0,
            })
        })
    }
}

impl ReplicaRead {
    /// `work` on a replica that can answer it correctly, or on the primary.
    pub async fn run<T>(
        &self,
        work: impl AsyncFn(&service::database::Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ApiError> {
        Ok(self.ctx.databases.read(self.token, work).await?)
    }

    pub fn context(&self) -> &web::Data<AppContext> {
        &self.ctx
    }

    pub fn token(&self) -> Option<Lsn> {
        self.token
    }
}

/// The name of the first parameter whose name or value holds an encoded NUL.
fn parameter_with_nul(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let encodes_nul = pair.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
        encodes_nul.then(|| pair.split('=').next().unwrap_or_default().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Review {
        rating: i16,
        body: Option<String>,
    }

    fn parse(json: &str) -> Result<Review, ApiError> {
        parse_body(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn whole_floats_are_integers_and_fractions_are_not() {
        assert_eq!(parse(r#"{"rating": 4.0}"#).unwrap().rating, 4);
        assert_eq!(parse(r#"{"rating": 4}"#).unwrap().rating, 4);
        assert!(matches!(parse(r#"{"rating": 4.5}"#), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn arrays_are_not_objects() {
        let err = parse(r#"[5, "positional"]"#).unwrap_err();
        assert!(
            matches!(err, ApiError::BadRequest(ref d) if d.contains("JSON object")),
            "{err:?}"
        );
    }

    #[test]
    fn nul_is_refused_wherever_it_hides_and_the_field_is_named() {
        let Err(ApiError::BadField(errors)) = parse(r#"{"rating": 4, "body": "a\u0000b"}"#) else {
            panic!("NUL accepted")
        };
        assert_eq!(errors[0].field, "body");
        let mut nested = serde_json::json!({"ids": ["ok", "x\u{0}"], "meta": {"k\u{0}": 1}, "k\u{0}": 2});
        let mut errors = Vec::new();
        normalise_object(None, nested.as_object_mut().unwrap(), &mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["ids[1]", "k\u{0}", "meta.k\u{0}"]);
    }

    #[test]
    fn an_encoded_nul_in_a_query_names_its_parameter() {
        assert_eq!(parameter_with_nul("limit=5&q=a%00b").as_deref(), Some("q"));
        assert_eq!(parameter_with_nul("prefix=%00").as_deref(), Some("prefix"));
        assert_eq!(
            parameter_with_nul("q=a%2500b"),
            None,
            "an escaped percent sign is not a NUL"
        );
        assert_eq!(parameter_with_nul("q=plain&limit=2"), None);
    }
}
