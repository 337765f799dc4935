// Bundle one app into dist/apps/<app>/main.js (+ worker.js when present) with esbuild; the
// generated Prisma client and native/optional modules stay external and ship beside it.
import { build } from 'esbuild';
import { existsSync, cpSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const app = process.argv[2];
if (!app) throw new Error('usage: build-app.mjs <app>');
const root = resolve(import.meta.dirname, '../..');
const src = join(root, 'apps', app, 'src');
const out = join(root, 'dist', 'apps', app);
const entries = ['main.ts', 'worker.ts'].map((f) => join(src, f)).filter(existsSync);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  tsconfig: join(root, 'tsconfig.base.json'),
  external: ['pg-native', 'msgpackr-extract', 'bufferutil', 'utf-8-validate'],
  logLevel: 'warning',
});
const generated = join(root, 'apps', app, 'prisma', 'generated');
if (existsSync(generated)) cpSync(generated, join(out, 'prisma', 'generated'), { recursive: true });
console.log(`built ${app} -> ${out}`);
