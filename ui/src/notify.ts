/** What the user is told: toasts for results, the banner for failures, and
 * plain-language explanations of error codes. */

import { ApiError } from "./api";
import { $ } from "./dom";

let toastTimer: number | undefined;

/** A short-lived message for a result. */
export function toast(message: string) {
  const t = $("toast");
  t.textContent = message;
  t.classList.add("show");
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => t.classList.remove("show"), 3500);
}

const HINTS: Partial<Record<ApiError["code"], string>> = {
  disk_full: "The disk is full: free some space; Engram keeps running and retries.",
  read_only: "The data directory is read-only.",
  invalid_snapshot: "That file is not a valid Engram snapshot; nothing was imported.",
  unsupported_format: "That file was written by a newer Engram; nothing was imported.",
  protected: "This backup is protected.",
  locked: "Another Engram process is using this data directory.",
  runtime_stopped: "The engines have stopped.",
  storage_changed:
    "The database files were removed or replaced while Engram ran: nothing more is saved. Restart Engram (the engines keep their state until then).",
  corrupt_state: "That backup holds a state its engine cannot run (damaged, or settings outside their ranges); nothing was changed.",
  unreachable: "Engram is not reachable.",
};

/** A failure in words a user can act on, with the code for support. */
export function explain(e: unknown): string {
  if (e instanceof ApiError) return `${HINTS[e.code] ?? "Something went wrong."} (${e.code}: ${e.message})`;
  return String(e);
}

/** Shows a failure in the banner until dismissed. */
export function showError(message: string) {
  const b = $("banner");
  b.textContent = message;
  b.hidden = false;
}

/** Runs `f`; a failure goes to the banner as "<what> failed. …". */
export async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    showError(`${what} failed. ${explain(e)}`);
    return undefined;
  }
}
