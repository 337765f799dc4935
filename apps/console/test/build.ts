import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(__dirname, '../../..');
const DIST_INDEX = join(ROOT, 'apps/console/dist/index.html');
/** What the build is made of: a change to any of these makes the build stale. */
const SOURCES = ['apps/console/src', 'apps/console/index.html', 'apps/console/vite.config.mts', 'apps/console/public', 'libs/client/src', 'libs/contracts/src'];

function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/** Builds the console with Vite unless apps/console/dist is newer than every source (about 10 s). */
export async function ensureConsoleBuilt(): Promise<'built' | 'fresh'> {
  if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs > Math.max(...SOURCES.map((s) => newest(join(ROOT, s))))) return 'fresh';
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'apps/console/vite.config.mts'], { cwd: ROOT, maxBuffer: 16 << 20, env: { ...process.env, NODE_ENV: 'production' } });
  return 'built';
}
