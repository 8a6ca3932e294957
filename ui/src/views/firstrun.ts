/** The first run on a data directory without Engram data (the desktop
 * app on a new machine): the page waits for the choice — start fresh, or
 * recover the whole timeline from a replica, with a progress bar — and
 * the rest of the page starts once the engines run. */

import { ApiError } from "../api";
import { api } from "../backend";
import { $ } from "../dom";
import type { FirstRun } from "../generated/api";
import { recoveredText, recoverRequest, recoveryProgress } from "../model/offsite";
import { explain, showError, toast } from "../notify";
import { placeFields, type PlaceInput } from "./offsite";

/** How often a recovery's progress is asked. */
const POLL_MS = 250;

/** Whether this Engram waits for the first-run choice (an Engram that
 * runs, or one that cannot be asked, goes on to the page as before). */
export async function waitsForChoice(): Promise<FirstRun | null> {
  try {
    const f = await api.first_run();
    return f.state === "running" ? null : f;
  } catch {
    return null;
  }
}

/** Shows the choice and resolves once the engines run. */
export function firstRun(initial: FirstRun): Promise<void> {
  document.body.classList.add("waiting");
  $("live").textContent = "not started";
  const section = $("first-run");
  section.hidden = false;
  $("first-run-dir").textContent = `No Engram data in ${initial.data_dir} yet.`;
  const form = $<HTMLFormElement>("first-run-recover");
  const fresh = $<HTMLButtonElement>("first-run-fresh");
  const place = placeFields(form);
  return new Promise((resolve) => {
    const done = () => {
      document.body.classList.remove("waiting");
      section.hidden = true;
      resolve();
    };
    fresh.addEventListener("click", () => void freshFlow(done));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void recoverFlow(form, place, done);
    });
    // A window opened while a recovery runs (reloaded) follows it.
    if (initial.state === "recovering") void follow(form, done);
    else fresh.focus();
  });
}

function busy(form: HTMLFormElement, on: boolean) {
  for (const b of [$<HTMLButtonElement>("first-run-fresh"), ...form.querySelectorAll<HTMLButtonElement>("button")]) b.disabled = on;
  $("first-run-progress").hidden = !on;
}

function showProgress(f: Pick<FirstRun, "done" | "total">) {
  const p = recoveryProgress(f);
  const bar = $<HTMLProgressElement>("first-run-progress");
  bar.max = p.max;
  if (p.value === null) bar.removeAttribute("value");
  else bar.value = p.value;
  $("first-run-status").textContent = p.text;
}

async function freshFlow(done: () => void) {
  const error = $("first-run-error");
  error.hidden = true;
  try {
    await api.start_fresh();
    done();
  } catch (e) {
    error.textContent = `Could not start. ${explain(e)}`;
    error.hidden = false;
  }
}

async function recoverFlow(form: HTMLFormElement, place: () => PlaceInput, done: () => void) {
  const field = (n: string) => form.elements.namedItem(n) as HTMLInputElement;
  const error = $("first-run-error");
  error.hidden = true;
  const req = recoverRequest({ ...place(), key: field("key").value });
  if (typeof req === "string") {
    error.textContent = req;
    error.hidden = false;
    return;
  }
  busy(form, true);
  showProgress({ done: 0, total: 0 });
  const poll = window.setInterval(() => {
    void api
      .first_run()
      .then((f) => {
        if (f.state === "recovering") showProgress(f);
      })
      .catch(() => undefined);
  }, POLL_MS);
  try {
    const report = await api.recover_here(req);
    field("key").value = "";
    toast(recoveredText(report, req.location));
    if (report.skipped.length > 0) showError(`Left out of the recovery (damaged on the replica): ${report.skipped.join("; ")}.`);
    done();
  } catch (e) {
    // A failed recovery is kept as the first run's `failed`; a start that
    // failed after a recovery that succeeded is not (its data is there).
    const recoveryFailed = (await api.first_run().catch(() => null))?.failed != null;
    error.textContent = recoveryFailed || !(e instanceof ApiError)
      ? `Nothing was recovered; this data directory is left empty. ${explain(e)}`
      : `The timeline was recovered, but the engines could not start. ${explain(e)}`;
    error.hidden = false;
    $("first-run-status").textContent = "";
  } finally {
    window.clearInterval(poll);
    busy(form, false);
  }
}

/** Follows a recovery this window did not start, until it ends. */
async function follow(form: HTMLFormElement, done: () => void) {
  busy(form, true);
  for (;;) {
    const f = await api.first_run().catch(() => null);
    if (f?.state === "running") {
      busy(form, false);
      return done();
    }
    if (f?.state === "waiting") {
      busy(form, false);
      if (f.failed !== null) {
        $("first-run-error").textContent = `Nothing was recovered. ${explain(new ApiError(f.failed.code, f.failed.message))}`;
        $("first-run-error").hidden = false;
      }
      return;
    }
    if (f !== null) showProgress(f);
    await new Promise((r) => window.setTimeout(r, POLL_MS));
  }
}
