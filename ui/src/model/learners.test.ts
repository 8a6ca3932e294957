import { describe, expect, it } from "vitest";
import type { LearnerCommand, LearnerInfo, MetricInfo, ProcessStatus } from "../generated/api";
import { commandText, deletedLearnerText, deleteLearnerText, metricInfoRequest, metricRows, parseRules, processLine, rulesText, ruleText, shellCommand, span } from "./learners";

const base: ProcessStatus = {
  phase: "running",
  pid: 4242,
  started_at_ms: 1_000,
  restarts: 0,
  last_exit: null,
  last_exit_at_ms: null,
  next_start_at_ms: null,
  output: [],
};
const cmd: LearnerCommand = { argv: ["python3", "train.py"], workdir: "/w", autostart: true };

describe("processLine", () => {
  it("says what the process is doing, with its pid, wait and last exit", () => {
    expect(processLine(base, cmd, 181_000)).toBe("running (pid 4242) for 3 min");
    expect(processLine({ ...base, phase: "restarting", pid: null, next_start_at_ms: 3_000, last_exit: "killed by signal 9" }, cmd, 1_000)).toBe(
      "restarting in 2 s — killed by signal 9",
    );
    expect(processLine({ ...base, phase: "finished", last_exit: "exit status 0" }, cmd, 0)).toBe("finished — exit status 0");
    expect(processLine({ ...base, phase: "stopped" }, cmd, 0)).toBe("stopped");
    expect(processLine({ ...base, phase: "stopping" }, cmd, 0)).toBe("stopping…");
  });
  it("without a process: what happens at the next launch, or nothing when not supervised", () => {
    expect(processLine(null, cmd, 0)).toBe("starts with Engram");
    expect(processLine(null, { ...cmd, autostart: false }, 0)).toBe("stopped");
    expect(processLine(null, null, 0)).toBeNull();
  });
});

describe("commands", () => {
  it("runs a typed line with sh -c and shows it back as typed", () => {
    const line = "python3 train.py --lr 0.1 > out.txt";
    expect(shellCommand(line)).toEqual(["sh", "-c", line]);
    expect(commandText({ ...cmd, argv: shellCommand(line) })).toBe(line);
  });
  it("quotes words with spaces or quotes when showing an argv", () => {
    expect(commandText({ ...cmd, argv: ["python3", "my train.py", "it's"] })).toBe(`python3 'my train.py' 'it'\\''s'`);
  });
  it("spans", () => {
    expect([span(400), span(12_000), span(7_200_000), span(5 * 86_400_000)]).toEqual(["0.4 s", "12 s", "2 h", "5 d"]);
  });
});

describe("deleting a learner", () => {
  const learner: LearnerInfo = {
    name: "q",
    format: "raw",
    registered_at_ms: 0,
    live: null,
    generation: 0,
    command: null,
    process: null,
    metric_info: {},
    declared_metric_info: {},
    metric_info_set_here: [],
    milestone_rules: [],
    declared_milestone_rules: [],
    milestone_rules_set_here: false,
    stop_requested_at_ms: null,
  };
  it("says Engram stops a supervised learner, and that one elsewhere is told to stop", () => {
    const supervised = deleteLearnerText({ ...learner, command: cmd });
    expect(supervised).toMatch(/^Engram stops its process/);
    expect(supervised).not.toMatch(/elsewhere/);
    const elsewhere = deleteLearnerText(learner);
    expect(elsewhere).not.toMatch(/stops its process/);
    expect(elsewhere).toMatch(/told to stop and its saves are refused/);
    for (const t of [supervised, elsewhere]) expect(t).toMatch(/restoring one brings it back/);
  });
  it("says where its states are kept, or that they are gone", () => {
    const none = { name: "q", backups: 0, newest_backup_id: null };
    expect(deletedLearnerText(none, null)).toBe("Deleted learner q. No backup held it: its state is gone.");
    expect(deletedLearnerText({ name: "q", backups: 1, newest_backup_id: 7 }, null)).toBe("Deleted learner q. 1 backup holds its states (the newest is #7): restore one to bring it back.");
    expect(deletedLearnerText({ name: "q", backups: 1200, newest_backup_id: 9 }, null)).toMatch(/1,200 backups hold its states \(the newest is #9\)/);
    // The backup taken just before holds its state from just before: that is the one to name.
    expect(deletedLearnerText({ name: "q", backups: 3, newest_backup_id: 12 }, 12)).toBe("Deleted learner q. Backup #12 holds its state from just before: restore it to bring the learner back.");
  });
});

describe("ruleText", () => {
  it("reads a declared rule with its metric's label and format, else plainly", () => {
    const info: MetricInfo = { engine: "q", key: "success", label: "Success rate", unit: "", format: "percent", higher_is_better: true, card: true, chart: true, measured_at: null, measured_when: null };
    expect(ruleText({ metric: "success", at_least: 0.9, at_most: null }, info)).toBe("Success rate ≥ 90.0 %");
    expect(ruleText({ metric: "loss", at_least: null, at_most: 0.05 }, undefined)).toBe("loss ≤ 0.05");
  });
});

describe("parseRules", () => {
  it("reads rules as typed, one per ; or line, and writes them back the same way", () => {
    const got = parseRules("success >= 0.9; loss≤0.05\n\n  steps <= 1e6 ");
    expect(got).toEqual({
      rules: [
        { metric: "success", at_least: 0.9, at_most: null },
        { metric: "loss", at_least: null, at_most: 0.05 },
        { metric: "steps", at_least: null, at_most: 1e6 },
      ],
    });
    if ("rules" in got) expect(parseRules(rulesText(got.rules))).toEqual(got);
    expect(parseRules("  ")).toEqual({ rules: [] });
  });
  it("names the first bad rule", () => {
    for (const bad of ["success > 0.9", "Success >= 1", "train/loss <= 1", "loss <= x", "loss <= Infinity", "loss <="]) {
      const got = parseRules(`ok >= 1; ${bad}`);
      expect("error" in got && got.error.startsWith(`“${bad.trim()}” is not a rule`), bad).toBe(true);
    }
  });
});

describe("describing a learner's metrics", () => {
  const said = { label: "Success rate", unit: null, format: "percent" as const, higher_is_better: true };
  const learner: LearnerInfo = {
    name: "q",
    format: "raw",
    registered_at_ms: 0,
    live: { checksum: "00", size: 1, step: 3, metrics: { reward: 1, success: 0.5 }, saved_at_ms: 0 },
    generation: 0,
    command: null,
    process: null,
    metric_info: { success: said, loss: { label: "TD loss", unit: "nats", format: null, higher_is_better: false } },
    declared_metric_info: { success: said },
    metric_info_set_here: ["loss"],
    milestone_rules: [],
    declared_milestone_rules: [],
    milestone_rules_set_here: false,
    stop_requested_at_ms: null,
  };
  it("lists every metric it described, was described here or logged, once, by name", () => {
    const rows = metricRows(learner, ["steps", "success"]);
    expect(rows.map((r) => r.key)).toEqual(["loss", "reward", "steps", "success"]);
    expect(rows[0]).toEqual({ key: "loss", label: "TD loss", unit: "nats", format: "", direction: "lower", here: true });
    expect(rows[1]).toEqual({ key: "reward", label: "", unit: "", format: "", direction: "", here: false });
    expect(rows[3]).toMatchObject({ label: "Success rate", format: "percent", direction: "higher", here: false });
  });
  it("sends only the rows set here, whole, empty fields as none; none at all resets", () => {
    const rows = metricRows(learner, []);
    expect(metricInfoRequest(rows)).toEqual({ metrics: { loss: { label: "TD loss", unit: "nats", format: null, higher_is_better: false } } });
    const edited = rows.map((r) => (r.key === "reward" ? { ...r, label: "  Reward ", format: "decimal" as const, here: true } : r));
    expect(metricInfoRequest(edited).metrics?.reward).toEqual({ label: "Reward", unit: null, format: "decimal", higher_is_better: null });
    expect(metricInfoRequest(rows.map((r) => ({ ...r, here: false })))).toEqual({ metrics: null });
  });
});
