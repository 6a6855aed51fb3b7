// Builds the demo page (demo/) into the edge's web/static/kit/, which the edge embeds
// and serves at /kit/ (and / redirects there). File names carry no hashes, so a rebuild of the same sources is
// byte-identical (make kit-check).
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here("."),
  base: "./",
  plugins: [react()],
  resolve: {
    alias: {
      "@talim/realtime/react": here("../src/react/index.ts"),
      "@talim/realtime/styles.css": here("../src/styles.css"),
      "@talim/realtime": here("../src/client/index.ts"),
    },
  },
  build: {
    outDir: here("../../static/kit"),
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: {
      output: {
        entryFileNames: "demo.js",
        chunkFileNames: "[name].js",
        assetFileNames: "[name][extname]",
      },
    },
  },
});
