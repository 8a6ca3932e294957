//! How an API result becomes an HTTP response: the value as JSON, or
//! `{code, message}` with the code's status (`ErrorCode::http_status`);
//! exports and learner states as downloads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use engram_core::api::LearnerStateFile;
use engram_core::wire::{ApiError, ApiResult, ExportFile};

/// An API result as an HTTP response: the value as JSON, or `{code, message}`
/// with the code's status.
pub struct Reply<T>(pub ApiResult<T>);

impl<T: serde::Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => error_response(e),
        }
    }
}

pub(crate) fn error_response(e: ApiError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}

/// An export as a file download.
pub(crate) struct Download(pub(crate) ApiResult<ExportFile>);

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(f) => {
                let disposition =
                    HeaderValue::from_str(&format!("attachment; filename=\"{}\"", f.file_name))
                        .unwrap_or(HeaderValue::from_static("attachment"));
                (
                    [
                        (header::CONTENT_TYPE, HeaderValue::from_static(f.media_type)),
                        (header::CONTENT_DISPOSITION, disposition),
                    ],
                    f.bytes,
                )
                    .into_response()
            }
            Err(e) => error_response(e),
        }
    }
}

/// A learner's state: its bytes as the body, what it says of itself in
/// `X-Engram-Checksum`, `X-Engram-Step` (when it has one),
/// `X-Engram-Saved-At-Ms` and `X-Engram-Generation` (the learner's now).
pub(crate) struct StateDownload(pub(crate) ApiResult<LearnerStateFile>);

impl IntoResponse for StateDownload {
    fn into_response(self) -> Response {
        match self.0 {
            Ok(f) => {
                let mut headers = axum::http::HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let mut put = |name: &'static str, value: String| {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        headers.insert(name, v);
                    }
                };
                put("x-engram-checksum", f.state.checksum.clone());
                put("x-engram-saved-at-ms", f.state.saved_at_ms.to_string());
                put("x-engram-generation", f.generation.to_string());
                if let Some(step) = f.state.step {
                    put("x-engram-step", step.to_string());
                }
                (headers, f.bytes).into_response()
            }
            Err(e) => error_response(e),
        }
    }
}
