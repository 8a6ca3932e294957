//! The access token of a data directory: the secret every local client
//! (the served UI, scripts, learners of other processes) presents. It is
//! kept in `<data dir>/access.token`, readable by the owner only, and stays
//! the same across restarts — so an open page reconnects after `engram
//! serve` restarts — until the user asks for a new one.
//!
//! A token file that is not a regular file (a symlink), that others could
//! read (any group/other permission bit), or that does not hold a
//! well-formed token is replaced by a new token: a secret that may have
//! been seen is not reused.

use crate::error::{Error, Result};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The token file inside a data directory.
pub const TOKEN_FILE: &str = "access.token";
/// Hex characters in a token (128 random bits).
const TOKEN_LEN: usize = 32;

/// The data directory's token: the stored one if it is sound, else a new
/// one (written, owner-only, durably, before it is returned). `renew`
/// always makes a new one (the old one stops working).
pub fn access_token(data_dir: &Path, renew: bool) -> Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if !renew && let Some(t) = read_sound(&path) {
        return Ok(t);
    }
    let token = random_token()?;
    write_private(&path, &token)?;
    Ok(token)
}

/// The stored token, if the file is a regular owner-only file holding one.
fn read_sound(path: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let dir_owner = path.parent().and_then(|d| std::fs::metadata(d).ok())?.uid();
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 || meta.uid() != dir_owner {
        return None;
    }
    let mut s = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .ok()?
        .take(TOKEN_LEN as u64 + 2)
        .read_to_string(&mut s)
        .ok()?;
    let t = s.trim();
    (t.len() == TOKEN_LEN
        && t.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| t.to_string())
}

/// O_NOFOLLOW on Linux (std has no constant for it).
const fn libc_o_nofollow() -> i32 {
    0o400000
}

/// Writes `token` to `path` as a new owner-only file (temporary file,
/// fsync, rename), never through a symlink.
fn write_private(path: &Path, token: &str) -> Result<()> {
    let tmp: PathBuf = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        writeln!(f, "{token}").map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; TOKEN_LEN / 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("read", "/dev/urandom", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_stable_owner_only_and_renewed_on_request_or_when_exposed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = access_token(dir.path(), false).expect("token");
        assert_eq!(first.len(), TOKEN_LEN);
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only: {mode:o}");
        assert_eq!(
            access_token(dir.path(), false).expect("again"),
            first,
            "stable"
        );
        let renewed = access_token(dir.path(), true).expect("renew");
        assert_ne!(renewed, first);
        assert_eq!(access_token(dir.path(), false).expect("after"), renewed);

        // Readable by others: possibly seen, so replaced.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let after_exposure = access_token(dir.path(), false).expect("exposed");
        assert_ne!(after_exposure, renewed);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A symlink (to a file someone else controls) is never followed.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "0123456789abcdef0123456789abcdef\n").expect("write");
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        std::fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(&elsewhere, &path).expect("symlink");
        let t = access_token(dir.path(), false).expect("token");
        assert_ne!(t, "0123456789abcdef0123456789abcdef");
        assert!(
            std::fs::symlink_metadata(&path).expect("meta").is_file(),
            "replaced, not followed"
        );
        assert_eq!(
            std::fs::read_to_string(&elsewhere).expect("read"),
            "0123456789abcdef0123456789abcdef\n",
            "the symlink's target is untouched"
        );

        // Garbage in the file: a new token.
        std::fs::write(&path, "not a token").expect("write");
        assert_eq!(
            access_token(dir.path(), false).expect("token").len(),
            TOKEN_LEN
        );
    }
}
