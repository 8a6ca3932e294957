//! The UI: the built `ui/dist`, embedded in the binary (or read from a
//! directory), with the same strict Content-Security-Policy as the window.

use crate::Shared;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The same policy as the desktop window's, with `connect-src 'self'` for the API.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// The built UI (`ui/dist`), compiled into the binary.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../ui/dist"]
struct Ui;

pub(crate) async fn static_file(State(s): State<Shared>, uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let file = match &s.ui_dir {
        None => Ui::get(path).map(|f| f.data.into_owned()),
        // Plain names only: no parent or hidden components.
        Some(_)
            if path
                .split('/')
                .any(|c| c.is_empty() || c == ".." || c.starts_with('.')) =>
        {
            None
        }
        Some(dir) => tokio::fs::read(dir.join(path)).await.ok(),
    };
    let Some(bytes) = file else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = mime_guess::from_path(path)
        .first_or_octet_stream()
        .to_string();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&mime)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}
