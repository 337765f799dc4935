/**
 * What `@tessera/client` weighs in a browser app (issue 19 item 8): the core (and the core with
 * `/react`, React itself left out) bundled by esbuild for the browser, minified, then gzipped. The
 * baseline, built in the same run from the same sources, validates with the contracts' full-zod
 * schemas (`./wire.gen` swapped for `@tessera/contracts`) instead of the generated zod/mini ones.
 *
 *   npx tsx tools/bench/client-size.ts
 */
import { build, type Plugin } from 'esbuild';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from './lib/proc';
import { int, table } from './lib/stats';

export interface BundleSize {
  name: string;
  minified: number;
  gzipped: number;
}

/** The client validating with the contracts' own (full zod) schemas. */
const fullZod: Plugin = {
  name: 'full-zod-wire',
  setup(b) {
    b.onResolve({ filter: /^\.\/wire\.gen$/ }, () => ({ path: 'wire', namespace: 'full-zod' }));
    b.onLoad({ filter: /.*/, namespace: 'full-zod' }, () => ({
      contents: "export { TimelineData, ControlData, ServerEnvelope, WsErrorCode } from '@tessera/contracts';",
      resolveDir: ROOT,
      loader: 'ts',
    }));
  },
};

async function bundle(name: string, entries: string[], plugins: Plugin[] = []): Promise<BundleSize> {
  const contents = entries.map((e, i) => `export * as e${i} from ${JSON.stringify(join(ROOT, e))};`).join('\n');
  const r = await build({
    stdin: { contents, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2020',
    write: false,
    tsconfig: join(ROOT, 'tsconfig.base.json'),
    external: ['react'],
    plugins,
    logLevel: 'error',
  });
  const code = r.outputFiles[0].contents;
  return { name, minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

export async function clientSizes(): Promise<BundleSize[]> {
  const core = ['libs/client/src/index.ts'];
  const withReact = [...core, 'libs/client/src/react/index.ts'];
  return [
    await bundle('core (zod/mini validators generated from the contracts)', core),
    await bundle('core + /react', withReact),
    await bundle('baseline: core validating with the contracts (full zod)', core, [fullZod]),
    await bundle('baseline: core + /react, full zod', withReact, [fullZod]),
  ];
}

export function sizeTable(sizes: BundleSize[]): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  return table(
    ['browser bundle (esbuild, minified)', 'minified', 'gzipped', 'bytes gzipped'],
    sizes.map((s) => [s.name, kb(s.minified), kb(s.gzipped), int(s.gzipped)]),
  );
}

if (require.main === module) {
  void clientSizes().then((s) => process.stdout.write(`## @tessera/client bundle size\n${sizeTable(s)}\n`));
}
