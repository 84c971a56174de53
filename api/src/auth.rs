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
//!
//! The extractor decides and publishes its verdict on a `watch` channel, which wakes
//! only the body extractor if it waits. A `futures` `Shared` verdict, which either
//! side could drive, was replaced: when its future completes it wakes every task
//! that polled it, the one completing it too, so every request (a guest's, decided at
//! once, included) was woken once for nothing, and actix polled the connection and
//! the whole middleware stack again: a fifth of the detail's polls
//! (docs/performance.md, "A wake-up for nothing").

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use entity::user::Role;
use service::accounts::{self, CurrentUser};
use tokio::sync::watch;

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

/// One authorisation extractor's decision as the body extractor sees it: `None`
/// until it is made.
type Verdict = watch::Receiver<Option<Result<Caller, ApiError>>>;

/// Every verdict of this request, in its extensions.
#[derive(Clone, Default)]
struct Verdicts(Vec<Verdict>);

/// The extractor's future: runs `check` on the caller, and publishes the verdict to
/// the request's [`Verdicts`].
fn decide(req: &HttpRequest, check: fn(Caller) -> Result<Caller, ApiError>) -> Extracted<Caller> {
    let caller = authenticate(req);
    let (publish, verdict) = watch::channel(None);
    req.extensions_mut()
        .get_or_insert_with(Verdicts::default)
        .0
        .push(verdict);
    Box::pin(async move {
        let decided = caller.await.and_then(check);
        publish.send_replace(Some(decided.clone()));
        decided
    })
}

/// Waits until every authorisation extractor of this request has decided; the first
/// refusal, if any. The body extractor calls this before it reads the body.
pub(crate) async fn verdicts(req: &HttpRequest) -> Result<(), ApiError> {
    let verdicts = req.extensions().get::<Verdicts>().cloned().unwrap_or_default();
    for mut verdict in verdicts.0 {
        // An extractor dropped undecided means its handler's extraction is being
        // dropped too, this future with it; refusing is the safe answer all the same.
        let refused = match verdict.wait_for(Option::is_some).await {
            Ok(decided) => decided.as_ref().and_then(|d| d.as_ref().err()).cloned(),
            Err(_) => Some(ApiError::Unauthorized { invalid_token: false }),
        };
        if let Some(refusal) = refused {
            return Err(refusal);
        }
    }
    Ok(())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Extracted<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        decide(req, Ok)
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
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use actix_web::test::TestRequest;

    use super::*;

    /// A waker that counts how often the task would have been polled again.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future>(fut: Pin<&mut F>, wakes: &Arc<Wakes>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(&Waker::from(wakes.clone())))
    }

    #[test]
    fn a_guest_is_decided_at_once_without_waking_its_request_again() {
        let req = TestRequest::default().to_http_request();
        let wakes = Arc::new(Wakes::default());
        let caller = pin!(Caller::from_request(&req, &mut Payload::None));
        assert!(matches!(poll_once(caller, &wakes), Poll::Ready(Ok(Caller::Guest))));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "a wake-up for nothing");
    }

    #[test]
    fn a_malformed_token_is_refused_at_once_without_waking_its_request_again() {
        let req = TestRequest::default()
            .insert_header((AUTHORIZATION, "Basic abc"))
            .to_http_request();
        let wakes = Arc::new(Wakes::default());
        let member = pin!(Member::from_request(&req, &mut Payload::None));
        assert!(matches!(
            poll_once(member, &wakes),
            Poll::Ready(Err(ApiError::Unauthorized { invalid_token: true }))
        ));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_body_waits_for_the_verdict_and_is_woken_by_it() {
        let req = TestRequest::default().to_http_request();
        let (waiting, deciding) = (Arc::new(Wakes::default()), Arc::new(Wakes::default()));
        let mut body = pin!(verdicts(&req));
        let mut member = pin!(Member::from_request(&req, &mut Payload::None));
        assert!(poll_once(body.as_mut(), &waiting).is_pending());
        assert!(matches!(
            poll_once(member.as_mut(), &deciding),
            Poll::Ready(Err(ApiError::Unauthorized { invalid_token: false }))
        ));
        assert_eq!(waiting.0.load(Ordering::SeqCst), 1, "the body is woken by the verdict");
        assert_eq!(deciding.0.load(Ordering::SeqCst), 0);
        assert!(matches!(
            poll_once(body, &waiting),
            Poll::Ready(Err(ApiError::Unauthorized { invalid_token: false }))
        ));
    }

    #[test]
    fn a_verdict_never_made_refuses_the_body() {
        let req = TestRequest::default().to_http_request();
        drop(Caller::from_request(&req, &mut Payload::None));
        let wakes = Arc::new(Wakes::default());
        assert!(matches!(
            poll_once(pin!(verdicts(&req)), &wakes),
            Poll::Ready(Err(ApiError::Unauthorized { .. }))
        ));
    }

    #[test]
    fn parses_bearer_headers_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
