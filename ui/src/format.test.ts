import { describe, expect, it } from "vitest";
import { formatBytes, formatTimestamp } from "./format";

describe("formatBytes", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1536, "1.5 KB"],
    [10 * 1024 * 1024, "10 MB"],
    [-1, "—"],
    [Number.NaN, "—"],
  ])("%s -> %s", (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });
});

describe("formatTimestamp", () => {
  it("formats UTC", () => {
    expect(formatTimestamp(1_795_633_474_123)).toBe("2026-11-25 19:04:34");
    expect(formatTimestamp(Number.POSITIVE_INFINITY)).toBe("—");
  });
});
