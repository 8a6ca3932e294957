import { defineConfig } from "vite";

// Relative asset paths: the same build is served by Tauri and by `engram serve`.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
});
