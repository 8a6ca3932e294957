//! What every request must pass: a Host of this loopback address (stops
//! DNS rebinding) and, under `/api`, the access token.

use crate::Shared;
use crate::reply::error_response;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use engram_core::ErrorCode;
use engram_core::wire::ApiError;

pub(crate) async fn require_loopback_host(
    State(s): State<Shared>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = s.host.rsplit(':').next().unwrap_or("");
    if host == s.host || host == format!("localhost:{port}") {
        next.run(req).await
    } else {
        error_response(ApiError::new(
            ErrorCode::ForbiddenHost,
            "requests must address 127.0.0.1 or localhost",
        ))
    }
}

pub(crate) async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_owned())
    });
    let presented = bearer.or(query).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), s.token.as_bytes()) {
        next.run(req).await
    } else {
        error_response(ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong token (use the URL `engram serve` printed)",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
