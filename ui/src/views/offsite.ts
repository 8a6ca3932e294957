/** The Offsite panel: each replica (where, how far behind and why, upload
 * progress, what it holds and what deduplication saved, the last verify),
 * its actions (verify, verify every pack, list what it holds and bring a
 * backup deleted here back, forget it), adding one (the key shown once),
 * and the key again. Polled while open: uploads move without events. */

import { $, el } from "../dom";
import { ask } from "../flows";
import { attempt, explain, toast } from "../notify";
import { state, views } from "../state";
import { loadList } from "./list";
import { api } from "../backend";
import { formatBytes, formatTimestamp, formatCount } from "../model/format";
import { addRequest, placeText, replicaLines, uploadProgress } from "../model/offsite";
import type { ReplicaKind, ReplicaStatus } from "../generated/api";

/** This module's state, in the one store. */
const my = views.offsite;

/** How often an open panel asks again. */
const POLL_MS = 3000;

export function buildOffsite(refreshAll: () => Promise<void>) {
  my.refreshAll = refreshAll;
  const panel = $<HTMLDetailsElement>("offsite-panel");
  panel.addEventListener("toggle", () => void refreshOffsite());
  window.setInterval(() => {
    if (document.visibilityState !== "visible") return;
    if (panel.open) void refreshOffsite();
    // A row still waiting to go offsite gets its mark when it has gone
    // (uploads send no event): the shown page is asked again, 50 rows.
    if (state.list.some((b) => b.offsite === "queued")) void loadList("same");
  }, POLL_MS);
  const form = $<HTMLFormElement>("offsite-add");
  const place = placeFields(form);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void addFlow(form, place);
  });
  $("offsite-key").addEventListener("click", () => void keyFlow());
}

/** Reloads the panel if it is open. */
export async function refreshOffsite() {
  if (!$<HTMLDetailsElement>("offsite-panel").open) return;
  const mine = ++my.loads;
  const body = $("offsite-body");
  try {
    const all = await api.replicas();
    if (mine !== my.loads) return;
    if (all.length === 0) {
      body.replaceChildren(el("p", { class: "muted", "data-testid": "offsite-none" }, "No replica yet: every backup lives on this disk only. Add one below — another disk, or a server over SFTP."));
      return;
    }
    const now = Date.now();
    const blocks = await Promise.all(all.map((r) => replicaBlock(r, now)));
    if (mine !== my.loads) return;
    body.replaceChildren(...blocks);
  } catch (e) {
    body.replaceChildren(el("p", { class: "error" }, `The replicas could not be loaded. ${explain(e)}`));
  }
}

async function replicaBlock(r: ReplicaStatus, now: number): Promise<HTMLElement> {
  const box = el("section", { class: `replica ${r.state}`, "data-testid": "replica", "data-name": r.name, "data-state": r.state });
  const head = el("h3", {}, r.name);
  const stateText = r.state === "up_to_date" ? "up to date" : r.state === "failing" ? "failing" : "uploading";
  head.append(" ", el("span", { class: `replica-state ${r.state}`, "data-testid": "replica-state" }, stateText));
  box.append(head, el("p", { class: "muted" }, `${placeText(r)}${r.append_only ? " · append-only" : ""}`));
  const p = uploadProgress(r);
  const bar = el("progress", { value: String(p.value), max: String(p.max), "aria-label": `Backups on ${r.name}`, "data-testid": "replica-progress" });
  const barLine = el("p", { class: "replica-bar" });
  barLine.append(bar, ` ${formatCount(p.value)} of ${formatCount(p.max)} backups there`);
  box.append(barLine);
  const lines = replicaLines(r, now);
  box.append(el("p", { "data-testid": "replica-summary", class: r.state === "failing" ? "error" : "" }, lines[0] ?? ""));
  for (const l of lines.slice(1)) box.append(el("p", {}, l));
  const verifying = my.verifying.get(r.name);
  if (verifying !== undefined) {
    const line = el("p", { "data-testid": "replica-verifying" });
    line.append(el("progress", { "aria-label": `Verifying ${r.name}` }), verifying ? " Verifying: reading and decrypting every pack…" : " Verifying the structure…");
    box.append(line);
  }
  const actions = el("div", { class: "actions" });
  const button = (label: string, testid: string, run: () => void, disabled = false) => {
    const b = el("button", { type: "button", "data-testid": testid }, label);
    b.disabled = disabled;
    b.addEventListener("click", run);
    actions.append(b);
  };
  button("Verify", "replica-verify", () => void verifyFlow(r.name, false), verifying !== undefined);
  button("Verify every pack", "replica-verify-data", () => void verifyFlow(r.name, true), verifying !== undefined);
  button(my.listing.has(r.name) ? "Hide its backups" : "Its backups", "replica-backups", () => {
    if (my.listing.has(r.name)) my.listing.delete(r.name);
    else my.listing.add(r.name);
    void refreshOffsite();
  });
  button("Forget…", "replica-remove", () => void removeFlow(r));
  box.append(actions);
  if (my.listing.has(r.name)) box.append(await heldTable(r.name));
  return box;
}

/** What a replica holds; a backup deleted here can be brought back. */
async function heldTable(name: string): Promise<HTMLElement> {
  try {
    const held = await api.replica_backups(name);
    if (held.length === 0) return el("p", { class: "muted" }, "It holds no backup yet.");
    const table = el("table", { class: "list replica-held", "data-testid": "replica-held" });
    const head = el("tr");
    for (const h of ["#", "Kind", "When (UTC)", "Label", "Size", ""]) head.append(el("th", {}, h));
    const thead = el("thead");
    thead.append(head);
    const rows = el("tbody");
    for (const b of held) {
      const tr = el("tr", { "data-id": String(b.backup_id) });
      const action = el("td");
      if (b.here) action.append(el("span", { class: "muted" }, "here too"));
      else {
        const back = el("button", { type: "button", "data-testid": "replica-retrieve" }, "Bring back");
        back.addEventListener("click", () => void retrieveFlow(name, b.backup_id));
        action.append(back);
      }
      tr.append(el("td", {}, String(b.backup_id)), el("td", {}, b.kind), el("td", {}, formatTimestamp(b.created_at_ms)), el("td", { class: "what" }, b.label ?? ""), el("td", {}, formatBytes(b.bytes)), action);
      rows.append(tr);
    }
    table.append(thead, rows);
    return table;
  } catch (e) {
    return el("p", { class: "error" }, `What it holds could not be listed. ${explain(e)}`);
  }
}

async function verifyFlow(name: string, readData: boolean) {
  my.verifying.set(name, readData);
  void refreshOffsite();
  try {
    const r = await api.verify_replica(name, { read_data: readData, subset: null });
    const what = readData ? `every pack read (${formatBytes(r.bytes_read)})` : "structure checked";
    if (r.ok) toast(`${name} verified in ${r.seconds.toFixed(1)} s: ${what}, ${r.snapshots} snapshots, no problem.`);
    else toast(`${name} is DAMAGED: ${r.problems.length} problem(s)${r.affected_backups.length > 0 ? `; backups affected: ${r.affected_backups.map((b) => `#${b}`).join(", ")}` : ""}.`);
  } catch (e) {
    toast(`Verify of ${name} failed. ${explain(e)}`);
  } finally {
    my.verifying.delete(name);
    void refreshOffsite();
  }
}

async function removeFlow(r: ReplicaStatus) {
  const ok = await ask(`Forget replica ${r.name}?`, `Engram stops uploading to ${placeText(r)}. Nothing there is deleted: the repository stays readable with the key (restic or engram replicas recover).`);
  if (!ok) return;
  const done = await attempt("Forget the replica", () => api.remove_replica(r.name));
  if (done) toast(`Forgot ${done.name}; nothing at ${done.location} was deleted.`);
  my.listing.delete(r.name);
  await Promise.all([refreshOffsite(), my.refreshAll()]);
}

async function retrieveFlow(name: string, id: number) {
  const b = await attempt("Bring the backup back", () => api.retrieve_backup(name, { backup_id: id }));
  if (b) toast(`Backup #${b.id} is back in the timeline from ${name}; restore it from there.`);
  await Promise.all([refreshOffsite(), my.refreshAll()]);
}

/** What the place fields hold. */
export interface PlaceInput {
  kind: ReplicaKind;
  location: string;
  port: string;
  identity: string;
}

/** Puts the fields of where a replica is (`#place-fields`) into `form`'s
 * `.place-fields` slot, their test ids prefixed as the slot says, the SFTP
 * ones shown only for SFTP; returns what reads them. */
export function placeFields(form: HTMLFormElement): () => PlaceInput {
  const slot = form.querySelector<HTMLElement>(".place-fields");
  const fields = $<HTMLTemplateElement>("place-fields").content.cloneNode(true) as DocumentFragment;
  for (const e of fields.querySelectorAll<HTMLElement>("[data-testid-suffix]")) {
    e.setAttribute("data-testid", `${slot?.dataset.testidPrefix ?? "place"}-${e.dataset.testidSuffix ?? ""}`);
  }
  slot?.replaceChildren(fields);
  const field = (n: string) => form.elements.namedItem(n) as HTMLInputElement;
  const kind = form.elements.namedItem("kind") as HTMLSelectElement;
  const sftpOnly = () => {
    for (const e of form.querySelectorAll<HTMLElement>(".sftp-only")) e.hidden = kind.value !== "sftp";
  };
  kind.addEventListener("change", sftpOnly);
  form.addEventListener("reset", () => window.setTimeout(sftpOnly));
  sftpOnly();
  return () => ({ kind: kind.value as ReplicaKind, location: field("location").value, port: field("port").value, identity: field("identity").value });
}

async function addFlow(form: HTMLFormElement, place: () => PlaceInput) {
  const field = (n: string) => form.elements.namedItem(n) as HTMLInputElement;
  const error = $("offsite-add-error");
  error.hidden = true;
  const req = addRequest({ ...place(), name: field("name").value, appendOnly: field("append_only").checked });
  const show = (text: string) => {
    error.textContent = text;
    error.hidden = false;
  };
  if (typeof req === "string") return show(req);
  const submit = form.querySelector<HTMLButtonElement>("button[type=submit]");
  if (submit) submit.disabled = true;
  try {
    const added = await api.add_replica(req);
    form.reset();
    toast(`${added.created ? "Made a new repository" : "Joined the repository"} at ${placeText(added.replica)}; uploads start now.`);
    if (added.new_key !== null) await showKey(added.new_key, added.key_file, true);
  } catch (e) {
    show(`Not added. ${explain(e)}`);
  } finally {
    if (submit) submit.disabled = false;
    void refreshOffsite();
  }
}

async function keyFlow() {
  const k = await attempt("Read the replicas' key", () => api.replica_key());
  if (k) await showKey(k.key, k.key_file, false);
}

/** The key, to copy: shown once when made, again on request. */
async function showKey(key: string, file: string, made: boolean) {
  const box = el("div");
  box.append(el("code", { class: "replica-key", "data-testid": "replica-key" }, key));
  box.append(el("p", { class: "muted" }, `It is kept in ${file} on this machine. Without it no replica can be read: keep a copy away from this machine (a password manager, paper).`));
  await ask(made ? "Keep this key to recover on another machine" : "The replicas' key", made ? "Engram made this key for your replicas and shows it now. Recovering on a new machine asks for it." : "Recovering on a new machine asks for this key.", box);
}
