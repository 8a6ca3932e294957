//! Engram's HTTP front door: the JSON API, its event stream, the learner API
//! and the UI, on 127.0.0.1 — in every process that runs the runtime
//! (`engram serve`, `engram run`, the desktop app), so learners of other
//! processes always find it ([`start`] publishes the port in the data
//! directory's `serve.port` and the token in its `access.token`).
//!
//! Its routes come from the core's declaration of operations
//! (`engram_core::for_each_operation!`): one generic handler parses the key,
//! the request, calls the operation and returns [`Reply`]; no handler builds
//! JSON or picks a status by hand (the status of an error is
//! `ErrorCode::http_status`). [`client`] is the same declaration as a typed
//! client of a running Engram. The printed URL carries a
//! random token that every `/api` request must present (`Authorization:
//! Bearer …` or `?token=…`, the latter for EventSource). Requests whose Host is
//! not this loopback address are refused, which stops DNS-rebinding pages.
//! The UI is embedded in the binary, so an installed `engram` serves it from
//! anywhere; its responses carry the same strict Content-Security-Policy as
//! the desktop window.

pub mod client;
mod extract;
mod guards;
pub mod listen;
mod reply;
mod routes;
mod ui;

pub use reply::Reply;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use engram_core::Error;
use engram_core::api::Api;
use std::path::PathBuf;
use std::sync::Arc;

/// What the server holds.
pub struct Server {
    pub api: Arc<Api>,
    pub token: String,
    /// `127.0.0.1:<port>`: the only Host (besides `localhost:<port>`) accepted.
    pub host: String,
    /// Serve the UI from this directory instead of the embedded copy.
    pub ui_dir: Option<PathBuf>,
}

type Shared = Arc<Server>;

/// The whole application: `/api/…` behind the token, the UI around it, all
/// behind the Host check.
pub fn router(server: Shared) -> Router {
    let api = routes::api_routes()
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(
            engram_core::limits::MAX_SNAPSHOT_BYTES.min(256 << 20) as usize,
        ))
        .route_layer(middleware::from_fn_with_state(
            server.clone(),
            guards::require_token,
        ));
    Router::new()
        .nest("/api", api)
        .fallback(axum::routing::get(ui::static_file))
        .layer(middleware::from_fn_with_state(
            server.clone(),
            guards::require_loopback_host,
        ))
        .with_state(server)
}

async fn unknown_route(uri: axum::http::Uri) -> Reply<()> {
    Reply(Err(Error::NotFound {
        what: "API route",
        id: uri.path().to_string(),
    }
    .into()))
}

/// How to serve.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Port on 127.0.0.1 (0: a free one). None: the data directory's last
    /// port if free (so pages and learners reconnect), else a free one.
    pub port: Option<u16>,
    /// Serve the UI from this directory instead of the embedded copy.
    pub ui_dir: Option<PathBuf>,
    /// Make a new access token (the old one stops working).
    pub new_token: bool,
}

/// The port a data directory was last served on (`<data dir>/serve.port`).
pub const PORT_FILE: &str = "serve.port";

/// A bound server: its address, its URL (with the token) and the future
/// that serves until dropped.
pub struct Serving {
    pub addr: std::net::SocketAddr,
    pub url: String,
    pub serve: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Binds 127.0.0.1, publishes the port and the token in the data
/// directory, and starts the supervised learners (they save through this
/// API, so they start once it listens). Serving starts when the returned
/// future is polled.
pub async fn start(
    api: Arc<Api>,
    data_dir: &std::path::Path,
    opts: Options,
) -> engram_core::Result<Serving> {
    let listener = bind(data_dir, opts.port).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("listen on", "127.0.0.1", e))?;
    let token = engram_core::access::access_token(data_dir, opts.new_token)?;
    let url = format!("http://{addr}/?token={token}");
    if let Err(e) = api.supervise_learners().await {
        tracing::warn!(error = %e.message, "supervised learners were not started");
    }
    let server = Arc::new(Server {
        api,
        token,
        host: addr.to_string(),
        ui_dir: opts.ui_dir,
    });
    let serve = Box::pin(listen::serve(listener, router(server), Default::default()));
    Ok(Serving { addr, url, serve })
}

/// Binds 127.0.0.1 on the asked port, or else on the data directory's
/// last port if free, else on a free one; remembers the port bound.
async fn bind(
    dir: &std::path::Path,
    asked: Option<u16>,
) -> engram_core::Result<tokio::net::TcpListener> {
    let bind = |port: u16| async move {
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io("listen on", format!("127.0.0.1:{port}"), e))
    };
    let listener = match asked {
        Some(port) => bind(port).await?,
        None => {
            let last = std::fs::read_to_string(dir.join(PORT_FILE))
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|&p| p != 0);
            match last {
                Some(p) => match bind(p).await {
                    Ok(l) => l,
                    Err(_) => bind(0).await?,
                },
                None => bind(0).await?,
            }
        }
    };
    if let Ok(addr) = listener.local_addr() {
        // Best effort: only a convenience for the next start (clients
        // fall back to their spool when they cannot reach Engram).
        let _ = std::fs::write(dir.join(PORT_FILE), format!("{}\n", addr.port()));
    }
    Ok(listener)
}

#[cfg(test)]
mod tests;
