//! Debian's stock `restic` (installed by `scripts/setup`) run on a replica
//! Engram wrote: the tests' independent reader of what is there. Shared by
//! the core's replica tests and the CLI's (`#[path]`).

use std::path::Path;
use std::process::{Command, Output};

/// Runs `restic ARGS` on a repository with its key (its cache in `cache`).
pub fn restic(repo: &Path, key: &str, cache: &Path, args: &[&str]) -> Output {
    Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", key)
        .env("RESTIC_CACHE_DIR", cache)
        .output()
        .expect("restic runs (scripts/setup installs Debian's restic)")
}

/// One snapshot as `restic snapshots --json` lists it.
pub struct Snap {
    pub id: String,
    pub hostname: String,
    pub tags: Vec<String>,
}

impl Snap {
    /// The Engram backup it holds (its `engram-backup:<id>` tag).
    pub fn backup(&self) -> Option<i64> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix("engram-backup:"))
            .and_then(|n| n.parse().ok())
    }
}

/// Every snapshot in the repository, as restic lists them.
pub fn snapshots(repo: &Path, key: &str, cache: &Path) -> Vec<Snap> {
    let out = restic(repo, key, cache, &["snapshots", "--json"]);
    assert!(
        out.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("snapshots json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| Snap {
            id: s["id"].as_str().expect("id").to_string(),
            hostname: s["hostname"].as_str().unwrap_or("").to_string(),
            tags: s["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}
