//! `engram serve`: the engines plus the UI and its JSON API on 127.0.0.1
//! (the routes are in [`crate::http`]). Backup changes go through the running
//! process, so there is never a second writer.

use crate::run_cmd::{RunArgs, run_engines};
use clap::Args;
use engram_core::Result;
use std::path::{Path, PathBuf};

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
    let opts = engram_http::Options {
        port: args.port,
        ui_dir: args.ui_dir,
        new_token: args.new_token,
    };
    let dir = data_dir.to_path_buf();
    run_engines(data_dir, &args.run, move |api| async move {
        let serving = engram_http::start(api, &dir, opts).await?;
        println!("Engram is serving on {}", serving.url);
        serving.serve.await;
        Ok(())
    })
}
