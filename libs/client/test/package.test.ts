/**
 * The package as a frontend installs it (issue 19 item 8): built with tsup, packed with `npm pack`,
 * unpacked into a fresh app's node_modules beside zod and react, then imported from an ES module,
 * required from CommonJS and type-checked from TypeScript (node16 ESM and CJS, and a bundler's
 * resolution) against its own .d.ts files alone.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

jest.setTimeout(300_000);
const ROOT = resolve(__dirname, '../../..');
const BIN = join(ROOT, 'node_modules/.bin');
let dir: string;
let app: string;
let files: string[];

beforeAll(() => {
  execFileSync(join(BIN, 'tsup'), ['--config', 'libs/client/tsup.config.ts', '--silent'], { cwd: ROOT, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'tessera-client-pack-'));
  const [packed] = JSON.parse(execFileSync('npm', ['pack', './libs/client', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })) as { filename: string; files: { path: string }[] }[];
  files = packed.files.map((f) => f.path);
  app = join(dir, 'app');
  const pkg = join(app, 'node_modules/@tessera/client');
  mkdirSync(pkg, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, packed.filename), '--strip-components=1', '-C', pkg]);
  // What the app's own install would bring: the package's dependency and its peer.
  for (const dep of ['zod', 'react', '@types/react']) {
    mkdirSync(join(app, 'node_modules', dep, '..'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep));
  }
  for (const f of readdirSync(join(__dirname, 'package'))) copyFileSync(join(__dirname, 'package', f), join(app, f));
  copyFileSync(join(app, 'typed.ts'), join(app, 'typed.mts'));
  copyFileSync(join(app, 'typed.ts'), join(app, 'typed.cts'));
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true }));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (file: string) => JSON.parse(execFileSync(process.execPath, [file], { cwd: app, encoding: 'utf8' })) as unknown;

test('the tarball holds the builds, their types and the README; no TypeScript source, no monorepo import', () => {
  expect(files).toEqual(expect.arrayContaining(['README.md', 'package.json', 'dist/index.mjs', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.mts', 'dist/react.mjs', 'dist/react.cjs', 'dist/react.d.ts', 'dist/react.d.mts']));
  expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  for (const f of files.filter((f) => f.startsWith('dist/') && !f.endsWith('.map'))) {
    const text = readFileSync(join(app, 'node_modules/@tessera/client', f), 'utf8');
    expect(text).not.toMatch(/@tessera\/(contracts|kit)/);
    // The code loads zod/mini only; the full build is never imported (the .d.ts may name its types).
    if (/\.[cm]?js$/.test(f)) expect(text).not.toMatch(/from ["']zod["']|require\(["']zod["']\)/);
  }
});

test.each([
  ['imported from an ES module', 'esm.mjs', 'esm'],
  ['required from CommonJS', 'cjs.cjs', 'cjs'],
])('%s, it runs', (_, file, kind) => {
  expect(run(file)).toEqual({ status: 'offline', messages: [`hello from ${kind}`], read: 'timeline', code: 'RATE_LIMITED', hook: 'function' });
});

test.each([
  ['node16 ES module and CommonJS', { module: 'node16', moduleResolution: 'node16' }, ['typed.mts', 'typed.cts']],
  ['a bundler', { module: 'esnext', moduleResolution: 'bundler' }, ['typed.ts']],
])('type-checked from TypeScript (%s), against the package\'s own types', (_, options, inputs) => {
  const tsconfig = join(app, `tsconfig.${options.moduleResolution}.json`);
  const compilerOptions = { ...options, target: 'es2022', lib: ['es2022', 'dom'], strict: true, noEmit: true, skipLibCheck: false, types: [] };
  writeFileSync(tsconfig, JSON.stringify({ compilerOptions, files: inputs }));
  let out = '';
  try {
    execFileSync(join(BIN, 'tsc'), ['-p', tsconfig], { cwd: app, encoding: 'utf8' });
  } catch (e) {
    out = (e as { stdout: string }).stdout;
  }
  expect(out).toBe('');
});
