//! Extractors whose refusals are API errors (`invalid_input`, `too_large`),
//! never axum's plain-text rejections.

use crate::reply::Reply;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, request::Parts};
use engram_core::wire::ApiError;
use engram_core::{Error, ErrorCode};
use serde::de::DeserializeOwned;

/// What a key in the path is called when it is refused.
pub(crate) trait KeyName {
    const LABEL: &'static str;
}

impl KeyName for i64 {
    const LABEL: &'static str = "backup id";
}

impl KeyName for String {
    const LABEL: &'static str = "learner name";
}

impl KeyName for engram_core::api::NoKey {
    const LABEL: &'static str = "key";
}

/// The key from the path — a backup id, a learner name (its rules are
/// checked by the core); one that does not parse is `invalid_input`.
pub(crate) struct Key<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + KeyName + Send> FromRequestParts<S> for Key<T> {
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Key(p.0))
            .map_err(|e| invalid(format!("{}: {e}", T::LABEL)))
    }
}

/// A query string; a malformed one is `invalid_input`.
pub(crate) struct Query<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| invalid(format!("query: {}", e.body_text())))
    }
}

/// A request parsed from its query-string form `F` (a listing, a timeline
/// range); a bad one is `invalid_input`.
pub(crate) struct Form<F, T>(pub(crate) T, pub(crate) std::marker::PhantomData<F>);

impl<S, F, T> FromRequestParts<S> for Form<F, T>
where
    S: Send + Sync,
    F: DeserializeOwned,
    T: TryFrom<F, Error = Error>,
{
    type Rejection = Reply<()>;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::<F>::from_request_parts(parts, state).await?;
        T::try_from(q)
            .map(|t| Form(t, std::marker::PhantomData))
            .map_err(|e| Reply(Err(e.into())))
    }
}

/// The raw body; one over the size limit is `too_large`.
pub(crate) struct Raw(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = Reply<()>;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(Raw).map_err(|e| {
            let code = match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::TooLarge,
                _ => ErrorCode::InvalidInput,
            };
            Reply(Err(ApiError::new(
                code,
                format!("request body: {}", e.body_text()),
            )))
        })
    }
}

/// A JSON body; an empty body is the request's default, malformed JSON is
/// `invalid_input`.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = Reply<()>;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Raw(bytes) = Raw::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| invalid(format!("request body: {e}")))
    }
}

pub(crate) fn invalid(message: String) -> Reply<()> {
    Reply(Err(Error::InvalidInput(message).into()))
}
