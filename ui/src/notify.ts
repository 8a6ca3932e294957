/** What the user is told: toasts for results; failures in a fixed region
 * at the bottom of the window (where the user is, not the top of a long
 * page), each until dismissed — or until its condition clears, for those
 * with a key (saving failed: cleared by the next save that lands); and
 * plain-language explanations of error codes. */

import { ApiError } from "./api";
import { $ } from "./dom";

/** How long a toast stays, and how many stay at once (oldest go first). */
const TOAST_MS = 8000;
const MAX_TOASTS = 3;

/** A message for a result. Toasts stack instead of replacing each other
 * (a breakthrough must not wipe a restore's undo hint), and each stays
 * long enough to read. */
export function toast(message: string, action?: { label: string; run: () => void }) {
  const stack = $("toast");
  const item = document.createElement("div");
  item.className = "toast-item";
  item.textContent = message;
  if (action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = action.label;
    b.setAttribute("data-testid", "toast-action");
    b.addEventListener("click", () => {
      item.remove();
      action.run();
    });
    item.append(" ", b);
  }
  stack.append(item);
  while (stack.children.length > MAX_TOASTS) stack.firstElementChild?.remove();
  stack.classList.add("show");
  window.setTimeout(() => {
    item.remove();
    if (stack.children.length === 0) stack.classList.remove("show");
  }, TOAST_MS);
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
  not_started: "No Engram data here yet: start fresh or recover from a replica.",
  wrong_key: "That key does not open the replica: use the key Engram showed when the replica was added.",
  replica_unavailable: "The replica could not be reached or refused the request.",
};

/** A failure in words a user can act on, with the code for support. */
export function explain(e: unknown): string {
  if (e instanceof ApiError) return `${HINTS[e.code] ?? "Something went wrong."} (${e.code}: ${e.message})`;
  return String(e);
}

/** Codes of failures that mean saves are not landing. */
export const SAVE_CODES = new Set(["disk_full", "read_only", "storage_changed", "io", "database", "db_locked"]);

/** The key under which a failure is filed: "save" for failures to write
 * (cleared when a save lands again), else its own (until dismissed). */
export function errorKey(e: unknown): string | undefined {
  return e instanceof ApiError && SAVE_CODES.has(e.code) ? "save" : undefined;
}

/** Shows a failure in the error region. With a `key`, it replaces the
 * previous failure of that key and [`clearErrors`] removes it; the same
 * message is not shown twice. Every failure has a dismiss button. */
export function showError(message: string, key?: string) {
  const region = $("banner");
  for (const item of region.querySelectorAll<HTMLElement>(".error-item")) {
    if ((key !== undefined && item.dataset.key === key) || item.dataset.message === message) item.remove();
  }
  const item = document.createElement("div");
  item.className = "error-item";
  item.dataset.message = message;
  if (key !== undefined) item.dataset.key = key;
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "quiet";
  close.textContent = "Dismiss";
  close.setAttribute("aria-label", "Dismiss this message");
  close.addEventListener("click", () => {
    item.remove();
    region.hidden = region.childElementCount === 0;
  });
  item.append(text, close);
  region.append(item);
  // At most five: the oldest go first.
  while (region.childElementCount > 5) region.firstElementChild?.remove();
  region.hidden = false;
}

/** Removes the failures filed under `key` (their condition cleared). */
export function clearErrors(key: string) {
  const region = $("banner");
  // A key's own items and its actions' ("save" clears "save/Back up now").
  for (const item of region.querySelectorAll<HTMLElement>(".error-item")) if (item.dataset.key === key || item.dataset.key?.startsWith(`${key}/`)) item.remove();
  region.hidden = region.childElementCount === 0;
}

/** Runs `f`; a failure goes to the error region as "<what> failed. …". */
export async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    // Keyed by the action too: the next background failure of the same
    // condition (an autosave on a full disk) must not replace what the
    // user's own action said; the condition's end still clears it.
    const key = errorKey(e);
    showError(`${what} failed. ${explain(e)}`, key === undefined ? undefined : `${key}/${what}`);
    return undefined;
  }
}
