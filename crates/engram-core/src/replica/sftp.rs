//! An SFTP replica: rustic_core's backend traits over libssh2 (`ssh2`).
//!
//! Written here rather than taken from `rustic_backend`'s `opendal`
//! feature: that feature builds 24 storage services (246 more crates,
//! +3 min 46 s per clean release build, +34 MB binary), drives the system
//! `ssh` through a ControlMaster, and reports every failure as "timeout"
//! (rustic#1488). Here every failure says what happened: the server cannot
//! be reached, its host key is unknown or changed, the key was refused, a
//! write was refused or the disk is full. The repository format is still
//! rustic_core's; this file only moves its files.
//!
//! Layout, as restic's: `config`, `keys/<id>`, `index/<id>`,
//! `snapshots/<id>`, `data/<first two hex digits>/<id>`. Files are written
//! in place (create, write, fsync, close) and never renamed, so a server
//! that refuses deletes (`internal-sftp -P remove,rmdir`) takes every
//! write; a write cut by a crash leaves a pack no index names, which
//! restic's check reports as unused and a later write of the same id
//! replaces.
//!
//! Host keys: the server's key must be in `~/.ssh/known_hosts` (or
//! `/etc/ssh/ssh_known_hosts`), as for `ssh` in batch mode; an unknown or
//! changed key is refused with its fingerprint and the command to check it.
//!
//! Must not: hold its connection lock across anything but one file's
//! transfer; be called on an async thread (libssh2 blocks).

use super::Place;
use crate::error::{Error, ErrorCode, Result};
use bytes::Bytes;
use rustic_core::{
    ALL_FILE_TYPES, BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult,
    WriteBackend,
};
use ssh2::{CheckResult, HashType, KnownHostFileKind, OpenFlags, OpenType, Session, Sftp};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one blocking SSH call may wait for the server.
const CALL_TIMEOUT_MS: u32 = 60_000;

/// Where an SFTP replica is: `[user@]host:path`, a port and a key file.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Address {
    pub user: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub identity: Option<PathBuf>,
}

impl Address {
    pub fn of(place: &Place) -> Result<Address> {
        let (login, path) = place.location.split_once(':').ok_or_else(|| {
            Error::InvalidInput(format!(
                "an sftp replica is USER@HOST:PATH, not {:?}",
                place.location
            ))
        })?;
        let (user, host) = match login.rsplit_once('@') {
            Some((u, h)) => (u.to_string(), h.to_string()),
            None => (
                std::env::var("USER").unwrap_or_else(|_| "root".into()),
                login.to_string(),
            ),
        };
        if user.is_empty() || host.is_empty() || path.is_empty() {
            return Err(Error::InvalidInput(format!(
                "an sftp replica is USER@HOST:PATH, not {:?}",
                place.location
            )));
        }
        Ok(Address {
            user,
            host,
            port: place.port.unwrap_or(22),
            path: path.trim_end_matches('/').to_string(),
            identity: place.identity.as_ref().map(PathBuf::from),
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn describe(&self) -> String {
        format!("sftp:{}@{}:{}", self.user, self.host, self.path)
    }

    fn unavailable(&self, what: String) -> Error {
        Error::Replica {
            code: ErrorCode::ReplicaUnavailable,
            message: format!("replica at {}: {what}", self.describe()),
        }
    }

    /// Connects, checks the host key and logs in.
    fn connect(&self) -> Result<(Session, Sftp)> {
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| self.unavailable(format!("cannot find the server {} ({e})", self.host)))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let why = match last {
                Some(e) if e.kind() == std::io::ErrorKind::TimedOut => format!(
                    "no answer from {} within {} s: is the server up and reachable from here?",
                    self.server(),
                    CONNECT_TIMEOUT.as_secs()
                ),
                Some(e) => format!(
                    "cannot reach {} ({e}): is the server up and the port right?",
                    self.server()
                ),
                None => format!("{} has no address", self.host),
            };
            self.unavailable(why)
        })?;
        let mut session = Session::new()
            .map_err(|e| self.unavailable(format!("cannot start an SSH session ({e})")))?;
        session.set_timeout(CALL_TIMEOUT_MS);
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            self.unavailable(format!(
                "{} does not speak SSH ({}): is it an SSH server's port?",
                self.server(),
                e.message()
            ))
        })?;
        self.check_host_key(&session)?;
        self.log_in(&session)?;
        let sftp = session.sftp().map_err(|e| {
            self.unavailable(format!(
                "{} took the login but its SFTP subsystem did not start ({}): is `Subsystem sftp` set in its sshd_config?",
                self.server(),
                e.message()
            ))
        })?;
        Ok((session, sftp))
    }

    fn check_host_key(&self, session: &Session) -> Result<()> {
        let (key, _) = session
            .host_key()
            .ok_or_else(|| self.unavailable(format!("{} sent no host key", self.server())))?;
        let fingerprint = session
            .host_key_hash(HashType::Sha256)
            .map(|h| {
                use base64::Engine as _;
                format!(
                    "SHA256:{}",
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(h)
                )
            })
            .unwrap_or_default();
        let mut known = session
            .known_hosts()
            .map_err(|e| self.unavailable(format!("cannot read known hosts ({e})")))?;
        let mut files = vec![PathBuf::from("/etc/ssh/ssh_known_hosts")];
        if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".ssh/known_hosts"));
        }
        for f in files.iter().filter(|f| f.exists()) {
            // A file libssh2 cannot parse in part still counts for its
            // other lines; a key it could not read is reported as unknown.
            let _ = known.read_file(f, KnownHostFileKind::OpenSSH);
        }
        let scan = format!(
            "ssh-keyscan -p {} {} >> ~/.ssh/known_hosts",
            self.port, self.host
        );
        match known.check_port(&self.host, self.port, key) {
            CheckResult::Match => Ok(()),
            CheckResult::Mismatch => Err(self.unavailable(format!(
                "the host key of {} CHANGED (now {fingerprint}) from the one in known_hosts: someone may be in between; if the server's key was really replaced, fix its line in ~/.ssh/known_hosts",
                self.server()
            ))),
            CheckResult::NotFound | CheckResult::Failure => Err(self.unavailable(format!(
                "{} is not a known host (its key is {fingerprint}): check that fingerprint with the server's owner, then trust it with `{scan}` (or connect once with ssh)",
                self.server()
            ))),
        }
    }

    fn log_in(&self, session: &Session) -> Result<()> {
        let mut tried = Vec::new();
        if let Some(identity) = &self.identity {
            if !identity.exists() {
                return Err(Error::InvalidInput(format!(
                    "the identity file {} does not exist",
                    identity.display()
                )));
            }
            if session
                .userauth_pubkey_file(&self.user, None, identity, None)
                .is_ok()
            {
                return Ok(());
            }
            tried.push(identity.display().to_string());
        } else {
            if std::env::var_os("SSH_AUTH_SOCK").is_some()
                && session.userauth_agent(&self.user).is_ok()
            {
                return Ok(());
            }
            tried.push("the ssh agent".into());
            if let Some(home) = std::env::var_os("HOME") {
                for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                    let file = Path::new(&home).join(".ssh").join(name);
                    if file.exists() {
                        if session
                            .userauth_pubkey_file(&self.user, None, &file, None)
                            .is_ok()
                        {
                            return Ok(());
                        }
                        tried.push(file.display().to_string());
                    }
                }
            }
        }
        Err(self.unavailable(format!(
            "{} refused {} as {} (tried {}): add its public key to the server's authorized_keys, or give the key file with --identity (without a passphrase)",
            self.server(),
            if self.identity.is_some() { "the key" } else { "every key" },
            self.user,
            tried.join(", ")
        )))
    }
}

/// A live connection, made again after a failure.
struct Connection {
    _session: Session,
    sftp: Sftp,
}

/// rustic_core's backend over one SFTP connection (calls take turns).
pub(super) struct SftpBackend {
    address: Address,
    root: PathBuf,
    connection: Mutex<Option<Connection>>,
}

impl SftpBackend {
    /// Connects now, so that an unreachable server, an unknown host key or
    /// a refused login is said in those words before rustic_core runs.
    pub fn connect(place: &Place) -> Result<SftpBackend> {
        let address = Address::of(place)?;
        let (session, sftp) = address.connect()?;
        Ok(SftpBackend {
            root: PathBuf::from(&address.path),
            address,
            connection: Mutex::new(Some(Connection {
                _session: session,
                sftp,
            })),
        })
    }

    /// Whether the repository's directory holds anything (it may not exist).
    pub fn holds_anything(&self) -> Result<bool> {
        match self.call("list", &self.root.clone(), |sftp| {
            Ok(sftp.readdir(&self.root)?)
        }) {
            Ok(entries) => Ok(!entries.is_empty()),
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(self.address.unavailable(e.to_string())),
        }
    }

    fn dir(&self, tpe: FileType, id: &Id) -> PathBuf {
        match tpe {
            FileType::Config => self.root.clone(),
            FileType::Pack => self.root.join("data").join(&id.to_hex()[0..2]),
            _ => self.root.join(tpe.dirname()),
        }
    }

    fn path(&self, tpe: FileType, id: &Id) -> PathBuf {
        match tpe {
            FileType::Config => self.root.join("config"),
            _ => self.dir(tpe, id).join(id.to_hex().as_str()),
        }
    }

    /// Runs `op` on the connection, connecting again once if the
    /// connection itself failed (an SFTP status such as "no such file" is
    /// the answer, not a failure of the connection).
    fn call<T>(
        &self,
        what: &str,
        path: &Path,
        op: impl Fn(&Sftp) -> std::result::Result<T, Fail>,
    ) -> std::result::Result<T, CallError> {
        let mut guard = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard.is_none() {
                match self.address.connect() {
                    Ok((session, sftp)) => {
                        *guard = Some(Connection {
                            _session: session,
                            sftp,
                        })
                    }
                    Err(e) => return Err(CallError::Connect(e.to_string())),
                }
            }
            let Some(conn) = guard.as_ref() else { continue };
            match op(&conn.sftp) {
                Ok(v) => return Ok(v),
                // A transfer cut short: reported, not retried (a full disk
                // would fail again); the connection is made again next time.
                Err(Fail::Io(e)) => {
                    *guard = None;
                    return Err(CallError::Status {
                        code: 4,
                        what: format!("{what} {}", path.display()),
                        message: e.to_string(),
                    });
                }
                Err(Fail::Ssh(e)) => match e.code() {
                    ssh2::ErrorCode::SFTP(code) if code != 6 && code != 7 => {
                        return Err(CallError::Status {
                            code,
                            what: format!("{what} {}", path.display()),
                            message: e.message().to_string(),
                        });
                    }
                    _ => {
                        *guard = None;
                        if attempt == 1 {
                            return Err(CallError::Connect(format!(
                                "the connection to {} failed during {what} {} ({})",
                                self.address.server(),
                                path.display(),
                                e.message()
                            )));
                        }
                    }
                },
            }
        }
        Err(CallError::Connect(format!(
            "no connection to {}",
            self.address.server()
        )))
    }

    fn ensure_dir(&self, dir: &Path) -> std::result::Result<(), CallError> {
        match self.call("make directory", dir, |s| Ok(s.mkdir(dir, 0o700)?)) {
            Ok(()) => Ok(()),
            // An existing directory answers mkdir with a failure.
            Err(e @ CallError::Status { .. }) => {
                match self.call("look at", dir, |s| Ok(s.stat(dir)?)) {
                    Ok(st) if st.is_dir() => Ok(()),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn rustic(&self, e: CallError) -> Box<RusticError> {
        RusticError::new(ErrorKind::Backend, self.message(&e))
    }

    fn message(&self, e: &CallError) -> String {
        let text = match e {
            CallError::Connect(m) => m.clone(),
            CallError::Status {
                code,
                what,
                message,
            } => match *code {
                2 | 10 => format!("{what}: no such file on the server"),
                3 | 12 => format!("{what}: the server refused it (permission denied)"),
                14 | 15 => format!("{what}: the server's disk is full"),
                4 => format!(
                    "{what}: the server failed it ({message}; a full disk or a refused operation)"
                ),
                _ => format!("{what}: {message}"),
            },
        };
        // rustic_core reads `{name}` in a message as a placeholder.
        format!("{}: {}", self.address.describe(), text)
            .replace('{', "(")
            .replace('}', ")")
    }
}

fn is_missing(e: &CallError) -> bool {
    matches!(e, CallError::Status { code: 2 | 10, .. })
}

/// How one call on the connection failed.
enum Fail {
    Ssh(ssh2::Error),
    Io(std::io::Error),
}

impl From<ssh2::Error> for Fail {
    fn from(e: ssh2::Error) -> Fail {
        Fail::Ssh(e)
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Fail {
        Fail::Io(e)
    }
}

#[derive(Debug)]
enum CallError {
    Connect(String),
    Status {
        code: i32,
        what: String,
        message: String,
    },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect(m) => f.write_str(m),
            CallError::Status { what, message, .. } => write!(f, "{what}: {message}"),
        }
    }
}

impl ReadBackend for SftpBackend {
    fn location(&self) -> String {
        self.address.describe()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        let dirs: Vec<PathBuf> = match tpe {
            FileType::Config => {
                let path = self.root.join("config");
                return match self.call("look at", &path, |s| Ok(s.stat(&path)?)) {
                    Ok(st) => Ok(vec![(
                        Id::default(),
                        u32::try_from(st.size.unwrap_or(0)).unwrap_or(u32::MAX),
                    )]),
                    Err(e) if is_missing(&e) => Ok(Vec::new()),
                    Err(e) => Err(self.rustic(e)),
                };
            }
            FileType::Pack => {
                let data = self.root.join("data");
                match self.call("list", &data, |s| Ok(s.readdir(&data)?)) {
                    Ok(entries) => entries
                        .into_iter()
                        .filter(|(_, st)| st.is_dir())
                        .map(|(p, _)| p)
                        .collect(),
                    Err(e) if is_missing(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(self.rustic(e)),
                }
            }
            _ => vec![self.root.join(tpe.dirname())],
        };
        let mut found = Vec::new();
        for dir in dirs {
            let entries = match self.call("list", &dir, |s| Ok(s.readdir(&dir)?)) {
                Ok(entries) => entries,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(self.rustic(e)),
            };
            for (path, st) in entries {
                if !st.is_file() {
                    continue;
                }
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if let Some(id) = Id::parse_some(name, tpe) {
                    let size = u32::try_from(st.size.unwrap_or(0)).unwrap_or(u32::MAX);
                    found.push((id, size));
                }
            }
        }
        Ok(found)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.call("read", &path, |s| {
            let mut file = s.open(&path)?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(Bytes::from(bytes))
        })
        .map_err(|e| self.rustic(e))
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        let path = self.path(tpe, id);
        self.call("read", &path, |s| {
            let mut file = s.open(&path)?;
            file.seek(SeekFrom::Start(offset.into()))?;
            let mut bytes = vec![0; length as usize];
            file.read_exact(&mut bytes)?;
            Ok(Bytes::from(bytes))
        })
        .map_err(|e| self.rustic(e))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.path(tpe, id).display().to_string()
    }
}

impl WriteBackend for SftpBackend {
    fn create(&self) -> RusticResult<()> {
        let mut dirs = vec![self.root.clone()];
        dirs.extend(ALL_FILE_TYPES.iter().map(|t| self.root.join(t.dirname())));
        for i in 0u8..=255 {
            dirs.push(self.root.join("data").join(format!("{i:02x}")));
        }
        for dir in dirs {
            self.ensure_dir(&dir).map_err(|e| self.rustic(e))?;
        }
        Ok(())
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        _cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        let path = self.path(tpe, id);
        let write = |s: &Sftp| {
            let mut file = s.open_mode(
                &path,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o600,
                OpenType::File,
            )?;
            for part in content.slice() {
                file.write_all(part)?;
            }
            // The server's fsync (an OpenSSH extension); a server without
            // it still has the bytes once the handle closes.
            match file.fsync() {
                Ok(()) => Ok(()),
                Err(e) if matches!(e.code(), ssh2::ErrorCode::SFTP(8)) => Ok(()),
                Err(e) => Err(Fail::Ssh(e)),
            }
        };
        match self.call("write", &path, write) {
            Ok(()) => Ok(()),
            Err(e) if is_missing(&e) => {
                // The directory went missing (a repository made by another
                // tool without the data/xx directories): make it, once.
                self.ensure_dir(&self.dir(tpe, id))
                    .and_then(|()| self.call("write", &path, write))
                    .map_err(|e| self.rustic(e))
            }
            Err(e) => Err(self.rustic(e)),
        }
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let path = self.path(tpe, id);
        self.call("delete", &path, |s| Ok(s.unlink(&path)?))
            .map_err(|e| self.rustic(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ReplicaKind;

    fn place(location: &str, port: Option<u16>) -> Place {
        Place {
            kind: ReplicaKind::Sftp,
            location: location.into(),
            port,
            identity: None,
        }
    }

    #[test]
    fn an_address_is_user_host_port_and_path() {
        let a =
            Address::of(&place("ada@backup.example:/srv/engram/", Some(2222))).expect("address");
        assert_eq!(
            (a.user.as_str(), a.host.as_str(), a.port, a.path.as_str()),
            ("ada", "backup.example", 2222, "/srv/engram")
        );
        let b = Address::of(&place("backup.example:engram", None)).expect("address");
        assert_eq!((b.port, b.path.as_str()), (22, "engram"));
        assert!(matches!(
            Address::of(&place("@host:/x", None)),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn a_closed_port_is_said_as_such() {
        // A port nothing listens on: bind one, note it, let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let Err(e) = SftpBackend::connect(&place("ada@127.0.0.1:/srv", Some(port))) else {
            panic!("connected to a closed port")
        };
        let text = e.to_string();
        assert!(text.contains("cannot reach 127.0.0.1:"), "{text}");
        assert!(text.contains("is the server up"), "{text}");
    }
}
