import { resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = resolve(import.meta.dirname, '../..');

/** The gateway serves the build at /console (apps/gateway/src/routes/console.ts). */
export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  plugins: [react()],
  resolve: {
    alias: [
      { find: /^@tessera\/client\/react$/, replacement: resolve(root, 'libs/client/src/react/index.ts') },
      { find: /^@tessera\/client$/, replacement: resolve(root, 'libs/client/src/index.ts') },
      { find: /^@tessera\/contracts$/, replacement: resolve(root, 'libs/contracts/src/index.ts') },
    ],
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No source maps in the build: the gateway serves /console/assets to anyone, unauthenticated,
    // and a map ships every source file with its comments. Debugging a build locally:
    // `npx vite build --config apps/console/vite.config.mts --sourcemap` (the dev server maps anyway).
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // zod's sources carry comments Rollup cannot place; harmless, and noisy on every build.
      onwarn: (w, warn) => (w.code === 'INVALID_ANNOTATION' ? undefined : warn(w)),
    },
  },
  logLevel: 'warn',
});
