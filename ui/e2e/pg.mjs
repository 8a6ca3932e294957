// A throwaway PostgreSQL cluster for the browser tests, as the Rust tests'
// (crates/engram-core/tests/support/pg.rs): Debian's PostgreSQL 15 on
// 127.0.0.1 and a free port, in a temporary directory, password logins over
// TCP; owned by the `postgres` user when run as root (PostgreSQL refuses
// root). stop() stops it at once and removes it.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const USER = "engram";
export const PASSWORD = "fleet-e2e-password";

function binDir() {
  const versions = readdirSync("/usr/lib/postgresql").filter((v) => existsSync(join("/usr/lib/postgresql", v, "bin", "initdb"))).sort();
  if (versions.length === 0) throw new Error("PostgreSQL is not installed (scripts/setup installs Debian's postgresql)");
  return join("/usr/lib/postgresql", versions[versions.length - 1], "bin");
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = s.address().port;
      s.close(() => ok(port));
    });
  });
}

export async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), "engram-e2e-pg-"));
  const data = join(dir, "data");
  const bin = binDir();
  const root = process.getuid?.() === 0;
  writeFileSync(join(dir, "pw"), `${PASSWORD}\n`);
  if (root) {
    execFileSync("chown", ["-R", "postgres:postgres", dir]);
    chmodSync(dir, 0o755);
  }
  const run = (program, args) => (root ? execFileSync("runuser", ["-u", "postgres", "--", join(bin, program), ...args], { stdio: "pipe" }) : execFileSync(join(bin, program), args, { stdio: "pipe" }));
  const port = await freePort();
  run("initdb", ["-D", data, "-U", USER, "--auth-local=trust", "--auth-host=scram-sha-256", `--pwfile=${join(dir, "pw")}`, "-E", "UTF8", "--no-sync"]);
  const conf = join(data, "postgresql.conf");
  writeFileSync(conf, `${readFileSync(conf, "utf8")}\nlisten_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\nfsync = off\n`);
  run("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", "start"]);
  const psql = (sql) => run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(port), "-U", USER, "-d", "fleet", "-c", sql]).toString().trim();
  run("psql", ["-X", "-q", "-h", dir, "-p", String(port), "-U", USER, "-d", "postgres", "-c", "CREATE DATABASE fleet"]);
  return {
    url: (password = PASSWORD) => `postgresql://${USER}:${password}@127.0.0.1:${port}/fleet`,
    psql,
    stop() {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
