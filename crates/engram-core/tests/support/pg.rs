//! A throwaway PostgreSQL cluster on 127.0.0.1 and a free port, in a
//! temporary directory, for tests and benchmarks: Debian's PostgreSQL 15
//! (`scripts/setup` installs it). It refuses to run as root, so as root the
//! cluster belongs to the `postgres` user. Password logins over TCP
//! (scram-sha-256), so a wrong password is refused as it would be in use.
//! Stopped (immediately) when dropped, also when the test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const USER: &str = "engram";
pub const PASSWORD: &str = "fleet-test-password";

pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/setup installs Debian's postgresql)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Cluster {
    /// Makes and starts a cluster with a database `fleet` owned by
    /// [`USER`] (password [`PASSWORD`]); `fsync` off unless `durable` (a
    /// commit is still in the WAL before it is acknowledged, so an
    /// immediate stop loses nothing committed).
    pub fn start(durable: bool) -> Cluster {
        Cluster::make(durable, false)
    }

    /// A cluster that takes TLS connections only (`hostssl`), its
    /// certificate (for 127.0.0.1) signed by a CA of its own:
    /// [`Cluster::ca_file`].
    pub fn start_tls() -> Cluster {
        Cluster::make(false, true)
    }

    /// The CA file that signed a TLS cluster's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.socket_dir().join("ca.pem")
    }

    fn make(durable: bool, tls: bool) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let as_postgres = rustix::process::geteuid().is_root();
        let data = dir.path().join("data");
        let bin = bin_dir();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("pwfile");
        if as_postgres {
            let chown = |p: &Path| {
                let st = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(p)
                    .status()
                    .expect("chown");
                assert!(st.success(), "chown failed");
            };
            chown(dir.path());
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let mut c = Cluster {
            _dir: dir,
            data,
            bin,
            port: free_port(),
            as_postgres,
        };
        let out = c
            .command("initdb")
            .arg("-D")
            .arg(&c.data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 200\nshared_buffers = 128MB\n",
            c.port,
            c.socket_dir().display()
        );
        if !durable {
            conf.push_str("fsync = off\nfull_page_writes = off\n");
        }
        if tls {
            c.make_certificates();
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            // TCP logins over TLS only: a connection without it is refused.
            let hba = std::fs::read_to_string(c.data.join("pg_hba.conf")).expect("hba");
            let hba = hba
                .lines()
                .map(|l| {
                    if l.starts_with("host ") {
                        l.replacen("host ", "hostssl ", 1)
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(c.data.join("pg_hba.conf"), hba + "\n").expect("write hba");
        }
        let mut pgconf = std::fs::read_to_string(c.data.join("postgresql.conf")).expect("conf");
        pgconf.push_str(&conf);
        std::fs::write(c.data.join("postgresql.conf"), pgconf).expect("write conf");
        c.up();
        c.psql("postgres", "CREATE DATABASE fleet");
        c
    }

    /// A CA and a server certificate for 127.0.0.1 signed by it, made with
    /// the `openssl` command; the key owner-only, as PostgreSQL demands.
    fn make_certificates(&self) {
        let dir = self.socket_dir();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=engram-test-ca",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        for f in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(f), self.data.join(f)).expect("copy certificate");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            self.data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod key");
        if self.as_postgres {
            let st = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(self.data.join("server.crt"))
                .arg(self.data.join("server.key"))
                .status()
                .expect("chown");
            assert!(st.success());
        }
    }

    fn socket_dir(&self) -> PathBuf {
        self.data.parent().expect("parent").to_path_buf()
    }

    fn command(&self, program: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        }
    }

    /// Starts the server (waits until it takes connections).
    pub fn up(&mut self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.parent().expect("parent").join("log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (as a crash would).
    pub fn down(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// The URL of database `fleet` as [`USER`] with `password`.
    pub fn url_with(&self, password: &str) -> String {
        format!(
            "postgresql://{USER}:{password}@127.0.0.1:{}/fleet",
            self.port
        )
    }

    pub fn url(&self) -> String {
        self.url_with(PASSWORD)
    }

    /// Runs SQL through `psql` on database `db` (fails the test if it fails).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}
