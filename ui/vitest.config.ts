import { defineConfig } from "vitest/config";

// Unit tests only; e2e/ holds the browser tests, run by `npm run test:e2e`.
export default defineConfig({
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
