/** What the Offsite panel and the backup rows say about replicas, computed
 * from the core's answers. Pure. */

import { formatBytes, formatTimestamp, formatCount } from "./format";
import type { AddReplica, FirstRun, OffsiteMark, RecoverHere, RecoverReport, ReplicaKind, ReplicaStatus, ReplicaVerifyReport } from "../generated/api";

const n = formatCount;

/** "3 s", "4 min", "2.5 h", "3 days". */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 90) return `${Math.max(0, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86_400)} days`;
}

/** Where it is, as a person knows it. */
export function placeText(r: Pick<ReplicaStatus, "kind" | "location" | "port">): string {
  return r.kind === "sftp" ? `sftp:${r.location}${r.port !== null && r.port !== 22 ? ` (port ${r.port})` : ""}` : r.location;
}

/** The lines under a replica's name: how far it is and why, what it holds,
 * when it was last checked. */
export function replicaLines(r: ReplicaStatus, nowMs: number): string[] {
  const lines: string[] = [];
  const lag = r.lag_ms !== null && r.behind > 0 ? `; the oldest waiting backup was made ${formatDuration(r.lag_ms)} ago` : "";
  lines.push(`${r.summary}${lag}.`);
  const dedup = r.bytes_replicated > 0 ? ` (uploading them added ${formatBytes(r.bytes_added)} after deduplication, before compression)` : "";
  lines.push(`Holds ${n(r.replicated)} backups: ${formatBytes(r.bytes_replicated)} of states${dedup}.${r.skipped > 0 ? ` ${n(r.skipped)} will not go (a state failed its checksum here).` : ""}`);
  const last = r.last_success_at_ms === null ? "Nothing uploaded yet." : `Last upload ${formatDuration(nowMs - r.last_success_at_ms)} ago; metric history sent ${r.history_at_ms === null ? "not yet" : `${formatDuration(nowMs - r.history_at_ms)} ago`}.`;
  lines.push(last);
  lines.push(verifyLine(r.last_verify, nowMs));
  return lines;
}

/** The last verify, in one sentence. */
export function verifyLine(v: ReplicaVerifyReport | null, nowMs: number): string {
  if (v === null) return "Never verified.";
  const what = v.read_data ? `every pack read (${formatBytes(v.bytes_read)})` : "structure";
  const when = `${formatDuration(nowMs - v.checked_at_ms)} ago (${formatTimestamp(v.checked_at_ms)} UTC)`;
  if (v.ok) return `Verified ${when}: ${what}, ${n(v.snapshots)} snapshots, no problem.`;
  const hit = v.affected_backups.length > 0 ? ` Backups affected: ${v.affected_backups.map((b) => `#${b}`).join(", ")}.` : "";
  return `DAMAGED at the last verify ${when}: ${v.problems.length} problem(s).${hit}`;
}

/** Upload progress: backups held out of held + waiting. */
export function uploadProgress(r: ReplicaStatus): { value: number; max: number } {
  return { value: r.replicated, max: Math.max(1, r.replicated + r.behind) };
}

/** A backup row's offsite mark: its short name and what it means. */
export function markText(m: OffsiteMark): { label: string; title: string } {
  switch (m) {
    case "replicated":
      return { label: "offsite", title: "Held by every offsite replica." };
    case "queued":
      return { label: "queued", title: "Not offsite yet: a replica has still to take it (see Offsite for why, if it is failing)." };
    case "failed":
      return { label: "not offsite", title: "A replica could not take it: a state here failed its checksum." };
  }
}

/** The add form's fields as a request; an error message when one is wrong. */
export function addRequest(f: { kind: ReplicaKind; location: string; name: string; port: string; identity: string; appendOnly: boolean }): AddReplica | string {
  const location = f.location.trim();
  if (location === "") return f.kind === "sftp" ? "Give the server as USER@HOST:PATH." : "Give the directory (another disk, a mounted share).";
  if (f.kind === "sftp" && !/^[^:@]+@[^:]+:.+$/.test(location)) return "An SFTP replica is USER@HOST:PATH, e.g. ada@backup.lan:engram.";
  let port: number | null = null;
  if (f.kind === "sftp" && f.port.trim() !== "") {
    port = Number(f.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return "The port is a whole number from 1 to 65535.";
  }
  return {
    kind: f.kind,
    location,
    name: f.name.trim() === "" ? null : f.name.trim(),
    port,
    identity: f.kind === "sftp" && f.identity.trim() !== "" ? f.identity.trim() : null,
    append_only: f.appendOnly,
  };
}

/** The first-run recovery form's fields as a request; an error message
 * when one is wrong (the place is checked as the add form checks it). */
export function recoverRequest(f: { kind: ReplicaKind; location: string; port: string; identity: string; key: string }): RecoverHere | string {
  const place = addRequest({ ...f, name: "", appendOnly: false });
  if (typeof place === "string") return place;
  const key = f.key.trim();
  if (key === "") return "Paste the replicas' key: Engram showed it when the replica was added (engram replicas key prints it on the old machine).";
  if (/\s/.test(key)) return "The key is one line without spaces; paste it exactly as Engram showed it.";
  return { kind: place.kind, location: place.location, port: place.port, identity: place.identity, key, host: null };
}

/** How far a recovery is, in words and as a bar (indeterminate until the
 * replica has listed its backups). */
export function recoveryProgress(f: Pick<FirstRun, "done" | "total">): { text: string; value: number | null; max: number } {
  if (f.total === 0) return { text: "Opening the replica and reading its list of backups…", value: null, max: 1 };
  return { text: `Recovering backups: ${f.done} of ${f.total}`, value: f.done, max: f.total };
}

/** What a finished recovery says. */
export function recoveredText(r: RecoverReport, from: string): string {
  const resumed = r.resumed_from === null ? "" : ` The engines resume from backup #${r.resumed_from}.`;
  const left = r.skipped.length > 0 ? ` ${r.skipped.length} left out (damaged): see the message below.` : "";
  return `Recovered ${r.recovered.length} backup${r.recovered.length === 1 ? "" : "s"} (${formatBytes(r.bytes)} of states) and ${r.history_points} history points from ${from} in ${r.seconds.toFixed(1)} s.${resumed}${left}`;
}
