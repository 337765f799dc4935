/**
 * The package as a frontend installs it: ESM (.mjs) and CommonJS (.cjs) builds of the core and of
 * `/react`, each with its types, in dist/. zod (zod/mini) and react stay imports of the host's
 * copies; the contracts are workspace source, so the types the API names are written into the
 * .d.ts files and no runtime code of theirs is needed (wire.gen.ts holds the validators).
 */
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'libs/client/src/index.ts', react: 'libs/client/src/react/index.ts' },
  outDir: 'libs/client/dist',
  format: ['esm', 'cjs'],
  outExtension: ({ format }) => ({ js: format === 'esm' ? '.mjs' : '.cjs' }),
  dts: { resolve: ['@tessera/contracts'], compilerOptions: { composite: false, incremental: false } },
  tsconfig: 'libs/client/tsconfig.build.json',
  target: 'es2020',
  platform: 'neutral',
  external: ['react', 'zod', /^zod\//],
  noExternal: ['@tessera/contracts'],
  splitting: true,
  treeshake: true,
  sourcemap: true,
  clean: true,
});
