//! The accept loop under the router: at most [`Limits::connections`] open
//! connections (beyond that, new ones wait in the kernel's backlog, so
//! thousands of idle or half-open sockets cannot exhaust the process), and
//! a client that does not finish its request headers within
//! [`Limits::header_timeout`] — including an idle keep-alive connection — is
//! disconnected. `axum::serve` offers neither, so this is hyper's own
//! connection builder driven directly; everything above the connection is
//! still the axum router.

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Bounds on the server's connections.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub connections: usize,
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 512,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.connections.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: Request<Incoming>| req.map(axum::body::Body::new)),
        );
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
}
