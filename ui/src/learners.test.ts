import { describe, expect, it } from "vitest";
import type { LearnerCommand, ProcessStatus } from "./generated/api";
import { commandText, processLine, shellCommand, span } from "./learners";

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
