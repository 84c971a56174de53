//! Who is calling: extractors that turn the `Authorization` header into a caller.
//!
//! No header means a guest (read-only). A header that is present but malformed, or a
//! token that is unknown, expired or revoked, is a 401 with `WWW-Authenticate`, never
//! a silent downgrade to guest: a client with a broken token should find out. A
//! handler states what it needs by the extractor it takes: [`Caller`] (anyone),
//! [`Authenticated`] (any account), [`Member`] (an account allowed to write:
//! user or admin) or [`Admin`].
//!
//! Each of them records its verdict in the request (`Verdicts`), and the body
//! extractor (`extract::Json`) waits for every verdict before it reads the body: a
//! caller without the right gets its 401 or 403 whatever the body holds. Without
//! this, actix polls a handler's extractors side by side, and a body error raced the
//! token lookup: the same request answered 400 or 403 at random, and a caller who
//! may not write learned the admin body's rules. A middleware that authenticates
//! every request first was rejected: public reads would pay a token lookup they do
//! not use, and the verdict would live apart from the extractor that states it.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use entity::user::Role;
use futures_util::FutureExt;
use futures_util::future::{LocalBoxFuture, Shared};
use service::accounts::{self, CurrentUser};

use crate::context::AppContext;
use crate::problem::ApiError;

#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Guest,
    User(CurrentUser),
}

pub struct Authenticated(pub CurrentUser);
pub struct Member(pub CurrentUser);
pub struct Admin(pub CurrentUser);

type Extracted<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// One authorisation extractor's decision, which the body extractor may await too.
type Verdict = Shared<LocalBoxFuture<'static, Result<Caller, ApiError>>>;

/// Every verdict of this request, in its extensions.
#[derive(Clone, Default)]
struct Verdicts(Vec<Verdict>);

/// Runs `check` on the caller as a verdict recorded in the request; the extractor's
/// own future is that verdict.
fn decide(req: &HttpRequest, check: fn(Caller) -> Result<Caller, ApiError>) -> Verdict {
    let caller = authenticate(req);
    let verdict = async move { check(caller.await?) }.boxed_local().shared();
    req.extensions_mut()
        .get_or_insert_with(Verdicts::default)
        .0
        .push(verdict.clone());
    verdict
}

/// Waits until every authorisation extractor of this request has decided; the first
/// refusal, if any. The body extractor calls this before it reads the body.
pub(crate) async fn verdicts(req: &HttpRequest) -> Result<(), ApiError> {
    let verdicts = req.extensions().get::<Verdicts>().cloned().unwrap_or_default();
    for verdict in verdicts.0 {
        verdict.await?;
    }
    Ok(())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(decide(req, Ok))
    }
}

/// The caller behind the `Authorization` header, looked up without any role check.
fn authenticate(req: &HttpRequest) -> Extracted<Caller> {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.to_str().map(str::to_owned));
    let ctx = req.app_data::<web::Data<AppContext>>().cloned();
    Box::pin(async move {
        let Some(header) = header else {
            return Ok(Caller::Guest);
        };
        let invalid = ApiError::Unauthorized { invalid_token: true };
        let header = header.map_err(|_| ApiError::Unauthorized { invalid_token: true })?;
        let token = bearer_token(&header).ok_or(invalid)?;
        let ctx = ctx.ok_or(ApiError::Internal)?;
        // With the primary unreachable a token is checked on a replica, so signed-in
        // reads go on through a failover (docs/security.md: how fresh that is).
        let found = ctx
            .databases
            .primary_or_any_replica(async |db| accounts::authenticate(db, token).await)
            .await?;
        match found {
            Some(user) => Ok(Caller::User(user)),
            None => Err(ApiError::Unauthorized { invalid_token: true }),
        }
    })
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

macro_rules! requiring {
    ($name:ident, |$user:ident| $check:expr) => {
        impl FromRequest for $name {
            type Error = ApiError;
            type Future = Extracted<Self>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let verdict = decide(req, |caller| match caller {
                    Caller::Guest => Err(ApiError::Unauthorized { invalid_token: false }),
                    Caller::User($user) => {
                        $check?;
                        Ok(caller)
                    }
                });
                Box::pin(async move {
                    match verdict.await? {
                        Caller::User(user) => Ok($name(user)),
                        Caller::Guest => Err(ApiError::Unauthorized { invalid_token: false }),
                    }
                })
            }
        }
    };
}

requiring!(Authenticated, |_user| Ok::<(), ApiError>(()));
requiring!(Member, |user| match user.role {
    Role::User | Role::Admin => Ok(()),
    Role::Guest => Err(ApiError::Forbidden("guest accounts are read-only")),
});
requiring!(Admin, |user| match user.role {
    Role::Admin => Ok(()),
    _ => Err(ApiError::Forbidden("this needs an admin account")),
});

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn parses_bearer_headers_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
