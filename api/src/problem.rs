//! The API's one error type, rendered as RFC 9457 `application/problem+json`.
//!
//! Handlers return [`ApiError`]; service errors convert into it at the boundary.
//! Internal details (database messages, stack traces) are logged, never sent. A
//! catch-all middleware ([`problem_for_bare_errors`]) rewrites any error response
//! that did not come from here — actix's own 405s, for example — into the same
//! format, so clients only ever parse one error shape.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use service::ServiceError;
use service::error::Outage;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field, in a 400/422 problem's `errors` list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The problem document (RFC 9457 members, plus `errors` for field-level details).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `about:blank`, or a `urn:bookworm:problem:*` URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem that says no more than its status.
    pub fn from_status(status: StatusCode) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
        }
    }

    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        HttpResponse::build(status).content_type(PROBLEM_JSON).json(self)
    }
}

/// What a handler returns.
pub type Reply = Result<actix_web::HttpResponse, ApiError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized {
        /// A token was presented but is malformed, unknown, expired or revoked.
        invalid_token: bool,
    },
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden(&'static str),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// No route at this address.
    #[error("not found")]
    NotFound,
    /// A route, but no such thing (or a soft-deleted one): "book not found".
    #[error("{0} not found")]
    NoSuch(&'static str),
    /// The path is a route's, the method is not: the `Allow` header lists those it takes.
    #[error("method not allowed")]
    MethodNotAllowed(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A request that breaks a rule for all input (see `extract`), naming the fields.
    #[error("bad request fields")]
    BadField(Vec<FieldError>),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// At a capacity limit of this instance (see `ServiceError::Busy`): retry in a second.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The readiness probe's answer, with its reason.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("internal error")]
    Internal,
}

impl ApiError {
    fn problem(&self) -> Problem {
        let base = Problem::from_status(self.status_code());
        match self {
            ApiError::Unauthorized { invalid_token: false } => Problem {
                detail: Some("send Authorization: Bearer <token>; get a token from POST /auth/login".into()),
                ..base
            },
            ApiError::Unauthorized { invalid_token: true } => Problem {
                detail: Some("the bearer token is malformed, unknown, expired or revoked".into()),
                ..base
            },
            ApiError::InvalidCredentials => Problem {
                detail: Some("invalid email or password".into()),
                ..base
            },
            ApiError::Forbidden(detail) => Problem {
                detail: Some((*detail).into()),
                ..base
            },
            ApiError::TooManyRequests { retry_after_secs } => Problem {
                detail: Some(format!("too many attempts; retry in {retry_after_secs} s")),
                ..base
            },
            ApiError::NotFound => Problem {
                detail: Some("no resource at this address".into()),
                ..base
            },
            ApiError::NoSuch(what) => Problem {
                detail: Some(format!("{what} not found")),
                ..base
            },
            ApiError::MethodNotAllowed(allowed) => Problem {
                detail: Some(format!("this address takes {allowed}")),
                ..base
            },
            ApiError::BadRequest(detail) => Problem {
                detail: Some(detail.clone()),
                ..base
            },
            ApiError::BadField(errors) => Problem {
                detail: Some("the request contains characters or values no field accepts".into()),
                errors: errors.clone(),
                ..base
            },
            ApiError::Validation(errors) => Problem {
                kind: "urn:bookworm:problem:validation",
                title: "Invalid input",
                detail: Some("one or more fields are invalid".into()),
                errors: errors.clone(),
                ..base
            },
            ApiError::Conflict(detail) => Problem {
                detail: Some(detail.clone()),
                ..base
            },
            ApiError::PayloadTooLarge { limit } => Problem {
                detail: Some(format!("request bodies are limited to {limit} bytes")),
                ..base
            },
            ApiError::UnsupportedMediaType => Problem {
                detail: Some("send JSON with Content-Type: application/json".into()),
                ..base
            },
            ApiError::Unavailable(detail) | ApiError::Busy(detail) => Problem {
                detail: Some((*detail).into()),
                ..base
            },
            ApiError::NotReady(reason) => Problem {
                detail: Some(reason.clone()),
                ..base
            },
            ApiError::Internal => base,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound | ApiError::NoSuch(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::BadField(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::Busy(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = self.problem().response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unavailable(_) | ApiError::NotReady(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Busy(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::InvalidCredentials | ApiError::Unauthorized { invalid_token: false } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="bookworm""#),
                );
            }
            ApiError::Unauthorized { invalid_token: true } => {
                let challenge = r#"Bearer realm="bookworm", error="invalid_token""#;
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            ApiError::MethodNotAllowed(allowed) => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    headers.insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<crate::throttle::Throttled> for ApiError {
    fn from(refused: crate::throttle::Throttled) -> Self {
        tracing::warn!(limit = ?refused.limit, "request throttled");
        metrics::counter!("bookworm_throttle_rejections_total", "limit" => refused.limit.as_str()).increment(1);
        ApiError::TooManyRequests {
            retry_after_secs: refused.wait.as_secs().max(1),
        }
    }
}

impl From<Vec<service::accounts::FieldError>> for ApiError {
    fn from(errors: Vec<service::accounts::FieldError>) -> Self {
        ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError {
                    field: e.field.to_owned(),
                    message: e.message,
                })
                .collect(),
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::NotFound(what) => ApiError::NoSuch(what),
            ServiceError::Conflict(detail) => ApiError::Conflict(detail),
            ServiceError::Invalid(detail) => ApiError::BadRequest(detail),
            ServiceError::InvalidCredentials => ApiError::InvalidCredentials,
            ServiceError::InvalidFields(errors) => errors.into(),
            ServiceError::Forbidden(detail) => ApiError::Forbidden(detail),
            ServiceError::Unavailable { reason, source } => {
                tracing::warn!(error = %source, ?reason, "database unavailable");
                metrics::counter!("bookworm_db_unavailable_total", "reason" => reason.as_str()).increment(1);
                ApiError::Unavailable(match reason {
                    Outage::Unreachable => "the database is unavailable, try again shortly",
                    Outage::Timeout => "the database took too long to answer, try again shortly",
                    Outage::Contention => "the database is busy with conflicting work, try again shortly",
                })
            }
            ServiceError::Busy(detail) => {
                tracing::warn!(detail, "refused at a capacity limit");
                ApiError::Busy(detail)
            }
            ServiceError::Database(source) => {
                tracing::error!(error = %source, "database error");
                ApiError::Internal
            }
            ServiceError::Internal(message) => {
                tracing::error!(%message, "internal error");
                ApiError::Internal
            }
        }
    }
}

/// Error-handler middleware body: leaves problem documents alone and replaces any
/// other error body with the problem for its status, keeping headers such as `Allow`.
pub fn problem_for_bare_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, original) = res.into_parts();
    let mut replacement = Problem::from_status(original.status()).response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement.headers_mut().insert(name.clone(), value.clone());
        }
    }
    let res = ServiceResponse::new(req, replacement).map_into_right_body::<B>();
    Ok(ErrorHandlerResponse::Response(res))
}

/// Error responses shared by many operations, for their OpenAPI annotations. Each
/// set lists what the extractors and the error type can answer, so a handler's
/// annotation adds only what is specific to it.
pub mod responses {
    use utoipa::IntoResponses;

    use super::Problem;

    /// Declares response sets whose every answer is a problem document.
    macro_rules! problem_responses {
        ($($(#[$doc:meta])* $name:ident { $($variant:ident = $status:tt, $description:tt);+ })+) => {
            $(
                $(#[$doc])*
                #[derive(IntoResponses)]
                pub enum $name {
                    $(
                        #[response(status = $status, description = $description, content_type = "application/problem+json")]
                        $variant(Problem),
                    )+
                }
            )+
        };
    }

    problem_responses! {
        /// What any operation can answer when a bad bearer token is presented.
        BadToken { Unauthorized = 401, "The bearer token is malformed, unknown, expired or revoked" }

        /// What an operation that needs a token can answer without one.
        NeedsToken { Unauthorized = 401, "Not signed in, or a bad token" }

        /// What an admin-only operation answers to anyone else who is signed in.
        AdminOnly { Forbidden = 403, "Not an admin" }

        /// What reading a JSON request body can answer.
        JsonBody {
            BadRequest = 400, "Malformed JSON or unknown fields";
            TooLarge = 413, "Body larger than MAX_BODY_BYTES";
            NotJson = 415, "Body is not application/json"
        }

        /// What an operation on one thing by id answers when there is no such thing (or it
        /// was deleted).
        NotFound { NotFound = 404, "No such thing, or a deleted one; `detail` names it (\"book not found\")" }

        /// Field-level validation failures.
        Invalid { Invalid = 422, "Fields break their rules; `errors` lists each" }

        /// What a read that honours `X-Consistency-Token` answers to a malformed one.
        BadConsistency { BadRequest = 400, "Malformed X-Consistency-Token" }

        /// What a list's query string (or its `X-Consistency-Token`) can answer.
        BadQuery { BadRequest = 400, "Bad limit, cursor, filter or X-Consistency-Token" }
    }

    /// What an operation that hashes a password answers when every hashing slot
    /// stayed busy for `PASSWORD_HASH_WAIT_MS`.
    #[derive(IntoResponses)]
    pub enum HashingBusy {
        #[response(
            status = 503,
            description = "Too many sign-ins being checked at once; retry after `Retry-After` seconds",
            content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait: 1"))
        )]
        Busy(Problem),
    }
}
