// A full disk, for real: `engram serve` on a small tmpfs, filled up while the
// page is open. The status pill must say saving fails, "Back up now" must not
// claim success, and both must recover when space returns. Needs root (to
// mount tmpfs); elsewhere it is skipped and says so.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, existsSync, rmSync, openSync, writeSync, closeSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { engram, startServe, stopServe } from "./serve.mjs";

const base = mkdtempSync(join(tmpdir(), "engram-full-"));
const mnt = join(base, "disk");
let mounted = false;
let server;
let browser;
let page;

before(async () => {
  assert.ok(existsSync(engram), `${engram} is missing: run cargo build -p engram-cli`);
  spawnSync("mkdir", ["-p", mnt]);
  mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt]).status === 0;
  if (!mounted) return;
  const started = await startServe(join(mnt, "data"));
  server = started.child;
  const url = started.url;
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  await page.goto(url);
});

after(async () => {
  await browser?.close();
  await stopServe(server);
  if (mounted) spawnSync("umount", [mnt]);
  rmSync(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
});

/** Fills the file system with one file until it is full. */
function fill(path) {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(1 << 20, 7);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
}

test("a full disk degrades the status pill, never claims a backup, and recovers when space returns", async (t) => {
  if (!mounted) {
    t.skip("SKIPPED: cannot mount tmpfs here (not root?)");
    return;
  }
  const live = page.getByTestId("live");
  await live.filter({ hasText: /^running$/ }).waitFor();
  const filler = join(mnt, "filler");
  fill(filler);
  await live.filter({ hasText: "saving failed: disk full" }).waitFor({ timeout: 20_000 });
  assert.equal(await page.getByTestId("banner").isVisible(), true, "the failure is shown");
  // "Back up now" fails visibly and nothing says it was taken.
  await page.getByRole("button", { name: "Back up now" }).click();
  const failed = page.getByTestId("banner").locator(".error-item").filter({ hasText: "Back up now failed" });
  await failed.waitFor();
  // It stays while autosaves keep failing (every 200 ms here): the next
  // background failure of the same condition does not replace it.
  await page.waitForTimeout(1000);
  assert.equal(await failed.isVisible(), true, "the action's failure is still shown");
  const toast = await page.getByTestId("toast").textContent();
  assert.ok(!/taken|backed up/i.test(toast ?? ""), `no false success: ${toast}`);
  // Space returns: the next save lands, the pill and the banner recover.
  unlinkSync(filler);
  await live.filter({ hasText: /^running$/ }).waitFor({ timeout: 20_000 });
  assert.equal(await page.getByTestId("banner").isVisible(), false, "the warning clears when the condition does");
});
