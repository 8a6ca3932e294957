//! The fleet catalog: every member host's backups, learners and metric
//! history in one **PostgreSQL** database, so a team sees all of its hosts
//! in one timeline and restores on one host what another learned.
//!
//! Local SQLite stays each host's source of truth; the engines never wait
//! on the network. What changed is queued in SQLite (`fleet_outbox`, filled
//! by triggers in the same transaction as the change) and pushed by one
//! worker thread in batched, idempotent upserts keyed by (host id, local
//! id) (`sync.rs`); a restart or an outage only delays it. The catalog's
//! schema is versioned by its own migrations (`schema.rs`); the reads the
//! doors show — hosts, backups, the all-hosts timeline, a learner's curves
//! across hosts — are `read.rs`. At most two connections per host: the
//! worker's and the reads'.
//!
//! The URL (with its password) is kept in `fleet.conf`, owner-only, in the
//! data directory. PostgreSQL's SQL lives here (the SQLite side of the
//! queue is `store::fleet`).

pub mod read;
mod schema;
mod sync;

pub use read::Reader;
pub use schema::{SCHEMA_VERSION, ensure as ensure_schema};
pub use sync::{BATCH, Syncer, claim, insert_backup_alone, upsert_backups};

use crate::error::{Error, ErrorCode, Result};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The file that holds the fleet's URL, in the data directory.
pub const CONF_FILE: &str = "fleet.conf";

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a statement may run (a PostgreSQL that stopped answering
/// mid-batch ends the batch, not the worker).
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// The path of the fleet's URL file in `data_dir`.
pub fn conf_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CONF_FILE)
}

/// The fleet's URL, if this data directory joined one.
pub fn read_url(data_dir: &Path) -> Result<Option<String>> {
    let path = conf_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let url = text.trim().to_string();
            if url.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "{} is empty: join the fleet again (engram fleet join postgresql://…)",
                    path.display()
                )));
            }
            Ok(Some(url))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

/// Writes the fleet's URL, owner-only (temporary file, fsync, rename).
pub fn write_url(data_dir: &Path, url: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let path = conf_path(data_dir);
    let tmp = data_dir.join(format!("{CONF_FILE}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let mut f = opts.open(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        writeln!(f, "{url}")
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename into", &path, e))?;
        if let Ok(d) = std::fs::File::open(data_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the URL file (leaving the fleet).
pub fn remove_url(data_dir: &Path) -> Result<()> {
    let path = conf_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", &path, e)),
    }
}

/// A fleet URL as it may be shown: the password replaced by `***`.
pub fn masked(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find('@');
    let path_start = rest.find('/').unwrap_or(rest.len());
    match auth_end {
        Some(at) if at < path_start => {
            let auth = &rest[..at];
            match auth.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &auth[..colon],
                    &rest[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A fleet URL, checked: the connection's settings and the CA file the
/// server's certificate must chain to (`sslrootcert=`), if one was named.
pub struct Target {
    pub config: postgres::Config,
    pub root_cert: Option<PathBuf>,
}

/// Takes out of a URL's query what libpq knows and tokio-postgres does
/// not: `sslrootcert=FILE`, and `sslmode=verify-full`/`verify-ca`, which
/// are `require` here (the certificate is always verified, host name too).
fn libpq_options(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslrootcert", v)) => {
                let v = percent_decode(v);
                root = Some(PathBuf::from(v));
            }
            Some(("sslmode", "verify-full" | "verify-ca")) => kept.push("sslmode=require".into()),
            _ => kept.push(pair.to_string()),
        }
    }
    if kept.is_empty() {
        (base.to_string(), root)
    } else {
        (format!("{base}?{}", kept.join("&")), root)
    }
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a fleet URL before anything is tried with it.
pub fn parse(url: &str) -> Result<postgres::Config> {
    target(url).map(|t| t.config)
}

/// Checks a fleet URL and splits off its CA file.
pub fn target(url: &str) -> Result<Target> {
    let (url, root_cert) = libpq_options(url.trim());
    let trimmed = url.as_str();
    if !(trimmed.starts_with("postgresql://") || trimmed.starts_with("postgres://")) {
        return Err(Error::InvalidInput(format!(
            "not a PostgreSQL URL: {} (expected postgresql://user:password@host:port/database)",
            masked(trimmed)
        )));
    }
    let mut config = postgres::Config::from_str(trimmed).map_err(|e| {
        Error::InvalidInput(format!("not a PostgreSQL URL: {} ({e})", masked(trimmed)))
    })?;
    if config.get_hosts().is_empty() {
        return Err(Error::InvalidInput(format!(
            "the fleet URL {} names no host",
            masked(trimmed)
        )));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("engram");
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.options(&format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
    if let Some(ca) = &root_cert
        && !ca.is_file()
    {
        return Err(Error::InvalidInput(format!(
            "the fleet URL's sslrootcert {} is not a readable file",
            ca.display()
        )));
    }
    Ok(Target { config, root_cert })
}

/// Connects to the fleet's PostgreSQL: TLS when the URL asks for it
/// (`sslmode=require`, or libpq's `verify-full`; `prefer`, the default,
/// uses it when the server offers it). The server's certificate is always
/// verified, its host name too: against the URL's `sslrootcert=FILE` when
/// given, else the system's roots (or `SSL_CERT_FILE`).
pub fn connect(url: &str) -> Result<postgres::Client> {
    let Target { config, root_cert } = target(url)?;
    let shown = masked(url.trim());
    let client = if config.get_ssl_mode() == postgres::config::SslMode::Disable {
        config.connect(postgres::NoTls)
    } else {
        let tls = |e: openssl::error::ErrorStack| {
            Error::InvalidInput(format!("cannot set up TLS for the fleet: {e}"))
        };
        let mut builder =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).map_err(tls)?;
        if let Some(ca) = &root_cert {
            builder.set_ca_file(ca).map_err(|e| {
                Error::InvalidInput(format!(
                    "the fleet URL's sslrootcert {} is not a PEM certificate file: {e}",
                    ca.display()
                ))
            })?;
        }
        config.connect(postgres_openssl::MakeTlsConnector::new(builder.build()))
    };
    client.map_err(|e| error(&shown, &e))
}

/// A PostgreSQL failure as a person can act on it.
pub(crate) fn error(shown: &str, e: &postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let state = db.code().code();
        let (code, message) = match state {
            "28P01" | "28000" => (
                ErrorCode::FleetRefused,
                format!("PostgreSQL at {shown} refused the login: {}", db.message()),
            ),
            "3D000" => (
                ErrorCode::FleetRefused,
                format!(
                    "{} (create it first: createdb, or CREATE DATABASE)",
                    db.message()
                ),
            ),
            "42501" => (
                ErrorCode::FleetRefused,
                format!(
                    "the fleet's PostgreSQL user may not do this: {} (it needs to create tables in its database)",
                    db.message()
                ),
            ),
            s if s.starts_with("23") => (
                ErrorCode::FleetRefused,
                format!(
                    "the fleet refused a row: {}{}",
                    db.message(),
                    db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
                ),
            ),
            "57014" => (
                ErrorCode::FleetUnavailable,
                format!("PostgreSQL at {shown} took too long to answer (statement timeout)"),
            ),
            s if s.starts_with("57") || s.starts_with("08") || s.starts_with("53") => (
                ErrorCode::FleetUnavailable,
                format!("PostgreSQL at {shown} is not available: {}", db.message()),
            ),
            _ => (
                ErrorCode::FleetRefused,
                format!("PostgreSQL at {shown}: {} ({state})", db.message()),
            ),
        };
        return Error::Fleet { code, message };
    }
    let detail = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    let hint = if detail.contains("certificate verify failed") {
        " — the server's certificate is not trusted: name the CA that signed it with sslrootcert=FILE in the URL"
    } else if detail.contains("server does not support TLS") {
        " — the URL asks for TLS (sslmode=require) and the server offers none"
    } else if detail.contains("refused") {
        " — is PostgreSQL running there?"
    } else if detail.contains("timed out") || detail.contains("timeout") {
        " — is the host reachable?"
    } else {
        ""
    };
    let what = if e.is_closed() {
        "the connection to PostgreSQL closed".to_string()
    } else {
        format!("cannot reach PostgreSQL at {shown}: {detail}{hint}")
    };
    Error::Fleet {
        code: ErrorCode::FleetUnavailable,
        message: what,
    }
}

/// Removes a host and everything of it from the catalog (leaving the
/// fleet), if this data directory still holds its id there. Returns
/// whether it was there.
pub fn forget_host(url: &str, host: &str, fp: &str) -> Result<bool> {
    let shown = masked(url);
    let mut client = connect(url)?;
    schema::ensure(&mut client, &shown)?;
    let n = client
        .execute(
            "DELETE FROM hosts WHERE host_id = $1 AND fingerprint = $2",
            &[&host, &fp],
        )
        .map_err(|e| error(&shown, &e))?;
    Ok(n > 0)
}

/// This host's fingerprint: the machine and the data directory. A host id
/// claimed with another fingerprint is another machine or a copied data
/// directory (see [`Error::Fleet`] with `fleet_conflict`).
pub fn fingerprint(data_dir: &Path) -> String {
    let machine = std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/var/lib/dbus/machine-id"))
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut h = blake3::Hasher::new();
    h.update(machine.trim().as_bytes());
    h.update(b"\0");
    h.update(host.trim().as_bytes());
    h.update(b"\0");
    h.update(dir.to_string_lossy().as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// The system's host name (the default name of a host in the fleet).
pub fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "engram".to_string())
}

/// Checks a host name a user chose.
pub fn validate_host_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 64 || n.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "invalid host name {name:?}: use 1-64 printable characters"
        )));
    }
    Ok(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            masked("postgresql://engram:s3cret@db.example:5432/fleet"),
            "postgresql://engram:***@db.example:5432/fleet"
        );
        assert_eq!(
            masked("postgresql://engram@db/fleet"),
            "postgresql://engram@db/fleet"
        );
        assert_eq!(masked("postgresql://db/fleet"), "postgresql://db/fleet");
        // An @ in the path is not an authority.
        assert_eq!(masked("postgresql://db/a@b"), "postgresql://db/a@b");
    }

    #[test]
    fn bad_urls_are_refused_before_anything_is_tried() {
        for bad in [
            "",
            "mysql://u:p@h/d",
            "postgresql://u:p@h:notaport/d",
            "/tmp/file",
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e.code(), ErrorCode::InvalidInput, "{bad}: {e}");
            assert!(!e.to_string().contains(":p@"), "password shown: {e}");
        }
        assert!(parse("postgresql://u:p@127.0.0.1:5432/fleet").is_ok());
    }

    #[test]
    fn libpq_tls_options_are_understood() {
        let (url, root) = libpq_options(
            "postgresql://u:p@h/d?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            url,
            "postgresql://u:p@h/d?sslmode=require&connect_timeout=3"
        );
        assert_eq!(root.as_deref(), Some(Path::new("/tmp/ca.pem")));
        assert_eq!(
            libpq_options("postgresql://h/d?sslrootcert=/x").0,
            "postgresql://h/d"
        );
        let e = target("postgresql://h/d?sslmode=require&sslrootcert=/no/such/ca.pem")
            .err()
            .expect("missing CA file");
        assert_eq!(e.code(), ErrorCode::InvalidInput);
        assert!(e.to_string().contains("/no/such/ca.pem"), "{e}");
    }

    #[test]
    fn the_url_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_url(dir.path()).expect("read"), None);
        write_url(dir.path(), "postgresql://u:p@h/d").expect("write");
        let mode = std::fs::metadata(conf_path(dir.path()))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            read_url(dir.path()).expect("read").as_deref(),
            Some("postgresql://u:p@h/d")
        );
        remove_url(dir.path()).expect("remove");
        assert_eq!(read_url(dir.path()).expect("read"), None);
    }
}
