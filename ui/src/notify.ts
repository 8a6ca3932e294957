/** What the user is told: toasts for results, the banner for failures, and
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
