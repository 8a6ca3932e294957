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
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Serve the UI from this directory instead of the copy built into the
    /// binary (for working on the UI: `vite build --watch`).
    #[arg(long)]
    pub ui_dir: Option<PathBuf>,
}

pub fn serve(data_dir: &Path, args: ServeArgs) -> Result<()> {
    let (port, ui_dir) = (args.port, args.ui_dir);
    run_engines(data_dir, &args.run, move |api| async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io("listen on", format!("127.0.0.1:{port}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("listen on", "127.0.0.1", e))?;
        let token = random_token()?;
        println!("Engram is serving on http://{addr}/?token={token}");
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

fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
