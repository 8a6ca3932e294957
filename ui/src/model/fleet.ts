/** What the Fleet panel says and draws, computed from the core's answers
 * (all read from the fleet's PostgreSQL). Pure. */

import type uPlot from "uplot";
import { formatCount, formatTimestamp } from "./format";
import { formatDuration } from "./offsite";
import type { FleetBackup, FleetHost, FleetJoin, FleetSeries, FleetStatus, FleetTimeline } from "../generated/api";

/** The lines under "Fleet": where, how the sync stands, what it sent. */
export function statusLines(s: FleetStatus, nowMs: number): string[] {
  if (!s.joined) return [`This host (${s.name}) is not in a fleet. Join one to see every host's backups in one timeline and restore here what another host learned.`];
  const lines = [`${s.url ?? "?"} — this host is “${s.name}” (${s.host_id}).`];
  const lag = s.lag_ms !== null && s.queued > 0 ? `; the oldest has waited ${formatDuration(s.lag_ms)}` : "";
  lines.push(`${capital(s.summary)}${lag}.`);
  const last = s.last_success_at_ms === null ? "Nothing sent yet" : `Last sent ${formatDuration(nowMs - s.last_success_at_ms)} ago`;
  lines.push(`${last}; ${formatCount(s.pushed_rows)} rows sent since joining.`);
  if (s.refused_rows > 0) lines.push(`${formatCount(s.refused_rows)} rows refused by the fleet and left out of it (the newest: ${s.last_refused ?? "?"}).`);
  return lines;
}

function capital(t: string): string {
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** A join request from the form, or what is wrong with it. */
export function joinRequest(url: string, name: string): FleetJoin | string {
  const u = url.trim();
  if (!/^postgres(ql)?:\/\/\S+$/.test(u)) return "The fleet's address is a PostgreSQL URL: postgresql://user:password@host:5432/database";
  const n = name.trim();
  if (n.length > 64) return "A host name has at most 64 characters.";
  return { url: u, name: n === "" ? null : n, take_over: false, new_id: false };
}

/** A host's row: its sync as a person reads it. */
export function hostCells(h: FleetHost, nowMs: number): { sync: string; health: string; newest: string } {
  const sync = h.last_sync_at_ms === null ? "never" : `${formatDuration(Math.max(0, h.lag_ms ?? nowMs - h.last_sync_at_ms))} ago`;
  const health = h.stale ? "stale — no sync for over a minute (down, offline or failing)" : "live";
  const newest = h.newest_backup_ms === null ? "none" : `${formatTimestamp(h.newest_backup_ms)} UTC`;
  return { sync, health, newest };
}

/** Why a fleet backup can or cannot be restored here. */
export function restoreHint(b: FleetBackup, thisHost: string): { can: boolean; why: string } {
  if (b.replicas.length === 0) return { can: false, why: `Not in an offsite replica yet: its states are only on ${b.host_name}.` };
  const where = b.host_id === thisHost ? "this host's own backup" : `${b.host_name}'s backup`;
  return { can: true, why: `Restore ${where} #${b.id} here (read from a shared replica, checked by hash; a pre-restore backup first).` };
}

/** One chart's data: a time axis (seconds) that is the union of every
 * host's points, and one series per host with gaps where it has none. */
export function alignCurves(curves: FleetSeries[]): uPlot.AlignedData {
  const times = [...new Set(curves.flatMap((c) => c.points.map((p) => p.at_ms)))].sort((a, b) => a - b);
  const at = new Map(times.map((t, i) => [t, i]));
  const ys = curves.map((c) => {
    const y: (number | null)[] = new Array<number | null>(times.length).fill(null);
    for (const p of c.points) y[at.get(p.at_ms) ?? 0] = p.value;
    return y;
  });
  return [times.map((t) => t / 1000), ...ys];
}

/** The timeline strip's bars: each bucket's place and width by its own
 * bounds, its height by its count (the fullest bucket is the full height),
 * stacked by kind from the bottom. */
export function densityBars(
  t: FleetTimeline,
  width: number,
  height: number,
): { x: number; w: number; h: number; count: number; from: number; to: number; kinds: string; segments: { kind: string; y: number; h: number }[] }[] {
  const span = Math.max(1, t.to_ms - t.from_ms + 1);
  const max = Math.max(1, ...t.buckets.map((b) => b.counts.reduce((s, c) => s + c.count, 0)));
  return t.buckets.map((b) => {
    const count = b.counts.reduce((s, c) => s + c.count, 0);
    const from = Math.max(b.start_ms, t.from_ms);
    const to = Math.min(b.end_ms - 1, t.to_ms);
    const x = ((from - t.from_ms) / span) * width;
    const w = Math.max(1, ((to - from + 1) / span) * width);
    const h = Math.max(1, (count / max) * height);
    let top = height;
    const segments = b.counts.map((c) => {
      const sh = (c.count / Math.max(1, count)) * h;
      top -= sh;
      return { kind: c.kind, y: top, h: sh };
    });
    return { x, w, h, count, from, to, kinds: b.counts.map((c) => `${formatCount(c.count)} ${c.kind}`).join(", "), segments };
  });
}
