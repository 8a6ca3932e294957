/** What a restore takes back, in words: the progress counters each engine
 * would lose, and how long ago the backup was taken. Pure. */

import type { Backup, Metrics } from "../generated/api";
import { formatCount } from "./format";

/** The counter that measures each engine's progress, and its noun. */
const PROGRESS: Record<string, [string, string]> = {
  zap: ["plans_generated", "ZAP plans"],
  mdp_es: ["episodes", "Q episodes"],
  orchestrator: ["cross_system_calls", "cross-system calls"],
};

/** "It goes back 1,200 ZAP plans and 3,400 Q episodes — 12 minutes of
 * learning." (only the engines restored; nothing for counters that grew). */
export function restoreSummary(b: Backup, now: Record<string, Metrics>, nowMs: number, engine?: string): string {
  const parts: string[] = [];
  for (const name of b.engines) {
    if (engine && name !== engine) continue;
    const p = PROGRESS[name];
    if (!p) continue;
    const then = b.metrics[name]?.[p[0]];
    const current = now[name]?.[p[0]];
    if (then === undefined || current === undefined || current <= then) continue;
    parts.push(`${formatCount(Math.round(current - then))} ${p[1]}`);
  }
  const minutes = Math.max(0, Math.round((nowMs - b.created_at_ms) / 60_000));
  const age = minutes < 1 ? "less than a minute ago" : minutes < 120 ? `${minutes} minutes ago` : `${Math.round(minutes / 60)} hours ago`;
  const list = parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}` : (parts[0] ?? "");
  const learners = (b.learners ?? []).filter((l) => !engine || l === engine);
  const lnames = learners.join(", ");
  if (engine && learners.length > 0) return `It takes learner ${lnames} back to its state in this backup; the backup was taken ${age}.`;
  const back = parts.length === 0 ? "It holds no less progress than now" : `It goes back ${list}`;
  const plus = learners.length === 0 ? "" : `, and learner${learners.length > 1 ? "s" : ""} ${lnames} to ${learners.length > 1 ? "their states" : "its state"} in it`;
  return `${back}${plus}; the backup was taken ${age}.`;
}
