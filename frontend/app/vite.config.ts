/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The app builds into ../dist, which frontend.go embeds into the binary.
// `npm run dev` proxies /api to a running `duplex demo` (make run).
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    // Monaco's editor chunk is large by nature; it is loaded only by the editor view.
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: true,
  },
  worker: { format: "es" },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
