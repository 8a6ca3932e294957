//! `engram serve`: the engines plus the UI and its JSON API on 127.0.0.1
//! (the routes are in [`crate::http`]). Backup changes go through the running
//! process, so there is never a second writer.

use crate::http::{Server, router};
use crate::run_cmd::{RunArgs, run_engines};
use clap::Args;
use engram_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Port on 127.0.0.1 (0 picks a free one). Without it, the port this
    /// data directory was last served on, if it is free (so open pages
    /// reconnect after a restart), else a free one.
    #[arg(long)]
    pub port: Option<u16>,
    /// Serve the UI from this directory instead of the copy built into the
    /// binary (for working on the UI: `vite build --watch`).
    #[arg(long)]
    pub ui_dir: Option<PathBuf>,
    /// Make a new access token (the printed URL's; kept in the data
    /// directory's `access.token`, owner-only, the same across restarts so
    /// open pages reconnect). The old one stops working.
    #[arg(long)]
    pub new_token: bool,
}

pub fn serve(data_dir: &Path, args: ServeArgs) -> Result<()> {
    let (port, ui_dir, renew) = (args.port, args.ui_dir, args.new_token);
    let dir = data_dir.to_path_buf();
    run_engines(data_dir, &args.run, move |api| async move {
        let listener = listen(&dir, port).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("listen on", "127.0.0.1", e))?;
        let token = engram_core::access::access_token(&dir, renew)?;
        println!("Engram is serving on http://{addr}/?token={token}");
        // Supervised learners start once the API they save through listens.
        if let Err(e) = api.supervise_learners().await {
            tracing::warn!(error = %e.message, "supervised learners were not started");
        }
        let server = Arc::new(Server {
            api,
            token,
            host: addr.to_string(),
            ui_dir,
        });
        crate::http::listen::serve(listener, router(server), Default::default()).await;
        Ok(())
    })
}

/// The port a data directory was last served on (`<data dir>/serve.port`).
const PORT_FILE: &str = "serve.port";

/// Binds 127.0.0.1 on the asked port, or else on the data directory's
/// last port if free, else on a free one; remembers the port bound.
async fn listen(dir: &Path, asked: Option<u16>) -> Result<tokio::net::TcpListener> {
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
        // Best effort: only a convenience for the next start.
        let _ = std::fs::write(dir.join(PORT_FILE), format!("{}\n", addr.port()));
    }
    Ok(listener)
}
