import { defineConfig, type Plugin } from "vite";

/** The page's code (`app.ts`, loaded by the entry once it has asked for the
 * first view's data) is fetched and compiled while the HTML is read: a
 * `modulepreload` link in the built page. */
function preloadPage(): Plugin {
  return {
    name: "engram-preload-page",
    apply: "build",
    transformIndexHtml: {
      order: "post",
      handler(_html, ctx) {
        const app = Object.values(ctx.bundle ?? {}).find((c) => c.type === "chunk" && c.name === "app");
        if (app === undefined) throw new Error("the build has no `app` chunk (main.ts imports ./app)");
        return [{ tag: "link", attrs: { rel: "modulepreload", crossorigin: true, href: `./${app.fileName}` }, injectTo: "head" }];
      },
    },
  };
}

// Relative asset paths: the same build is served by Tauri and by `engram serve`.
export default defineConfig({
  base: "./",
  plugins: [preloadPage()],
  // modulepreload is native in Chromium and WebKitGTK: no polyfill.
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", modulePreload: { polyfill: false } },
});
