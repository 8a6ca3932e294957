// The .deb: built (debug profile, for speed) by scripts/package-deb and
// inspected with dpkg-deb. Both binaries must be on the PATH once installed:
// /usr/bin/engram-desktop (the window) and /usr/bin/engram (headless, UI built in).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");

test("the .deb installs engram and engram-desktop into /usr/bin", { timeout: 30 * 60_000 }, () => {
  execFileSync(join(root, "scripts/package-deb"), ["--debug"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  const dir = join(root, "target/debug/bundle/deb");
  const debs = readdirSync(dir).filter((f) => f.endsWith(".deb"));
  assert.equal(debs.length, 1, `one package in ${dir}: ${debs}`);
  const deb = join(dir, debs[0]);
  const listing = execFileSync("dpkg-deb", ["-c", deb], { maxBuffer: 64 << 20 }).toString();
  for (const bin of ["engram", "engram-desktop"]) {
    const line = listing.split("\n").find((l) => l.endsWith(` usr/bin/${bin}`) || l.endsWith(` ./usr/bin/${bin}`));
    assert.ok(line, `usr/bin/${bin} is in the package:\n${listing}`);
    assert.match(line, /^-rwx/, `${bin} is executable: ${line}`);
  }
  // The packaged CLI runs on its own, outside the workspace.
  const out = mkdtempSync(join(tmpdir(), "engram-deb-"));
  try {
    execFileSync("dpkg-deb", ["-x", deb, out]);
    const version = execFileSync(join(out, "usr/bin/engram"), ["--version"], { cwd: out }).toString();
    assert.match(version, /^engram \d+\.\d+\.\d+/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
