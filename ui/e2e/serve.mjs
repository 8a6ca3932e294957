// Shared by the browser tests: a real `engram serve` on a data directory,
// and stopping it after its final save.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const root = resolve(import.meta.dirname, "../..");

/** Debian's Chromium, headless, quiet (no network of its own). */
export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** axe-core's serious and critical findings on the page as it is now. */
export async function seriousA11yFindings(p) {
  // Evaluated through the DevTools protocol: the page's CSP would refuse a script tag.
  await p.evaluate(readFileSync(join(root, "ui/node_modules/axe-core/axe.min.js"), "utf8"));
  const found = await p.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations);
  return found
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** The `engram` binary: `$ENGRAM_BIN`, else the debug build (the benchmark
 * sets the release build). */
export const engram = process.env.ENGRAM_BIN ?? join(root, "target/debug/engram");

/** Starts `engram serve` (by default fast-paced, for tests; the benchmark
 * passes `[]` for the defaults a user gets); resolves to the process and
 * the URL it prints. */
export function startServe(dataDir, options = ["--pace", "1ms", "--autosave", "200ms"]) {
  const child = spawn(engram, ["serve", "--data-dir", dataDir, ...options], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((ok, fail) => {
    createInterface({ input: child.stdout }).once("line", (line) => ok({ child, url: line.split(" ").pop() }));
    child.once("exit", (code) => fail(new Error(`engram serve exited with ${code}`)));
  });
}

/** SIGTERM, then waits for the exit (its final save is done after that). */
export async function stopServe(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGTERM");
  await exited;
}
