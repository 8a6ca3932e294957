import { describe, expect, it } from "vitest";
import type { Backup } from "../generated/api";
import { restoreSummary } from "./summary";

const backup = {
  id: 7,
  kind: "manual",
  created_at_ms: 1_000_000,
  engines: ["zap", "mdp_es"],
  metrics: { zap: { plans_generated: 100 }, mdp_es: { episodes: 5000 } },
} as unknown as Backup;

describe("restore summary", () => {
  it("says how much progress each restored engine goes back, and the backup's age", () => {
    const now = { zap: { plans_generated: 1300 }, mdp_es: { episodes: 8400 } };
    expect(restoreSummary(backup, now, 1_000_000 + 12 * 60_000)).toBe(
      "It goes back 1,200 ZAP plans and 3,400 Q episodes; the backup was taken 12 minutes ago.",
    );
    expect(restoreSummary(backup, now, 1_000_000 + 12 * 60_000, "zap")).toBe(
      "It goes back 1,200 ZAP plans; the backup was taken 12 minutes ago.",
    );
  });
  it("does not claim a loss when the backup is ahead (restored onto older progress)", () => {
    expect(restoreSummary(backup, { zap: { plans_generated: 50 } }, 1_000_000)).toBe(
      "It holds no less progress than now; the backup was taken less than a minute ago.",
    );
  });
  it("names the learners a restore takes back", () => {
    const withLearner = { ...backup, learners: ["frozenlake-q"] } as Backup;
    const now = { zap: { plans_generated: 1300 } };
    expect(restoreSummary(withLearner, now, 1_000_000, "frozenlake-q")).toBe(
      "It takes learner frozenlake-q back to its state in this backup; the backup was taken less than a minute ago.",
    );
    expect(restoreSummary(withLearner, now, 1_000_000)).toBe(
      "It goes back 1,200 ZAP plans, and learner frozenlake-q to its state in it; the backup was taken less than a minute ago.",
    );
  });
});
