/**
 * `npm run bench`: the runtime benchmark, then the gateway's, a service's HTTP stack layer by
 * layer, observability's, the agent manager's and the document server's, and the rest, one after the other (each starts and stops its own processes). Arguments go to runtime.ts (e.g.
 * `npm run bench -- --quick`); `--quick` also shortens observability's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
let current: ChildProcess | null = null;
let interrupted = false;

function run(script: string, args: string[]): Promise<number> {
  return new Promise((res) => {
    process.stdout.write(`\n# ${script} ${args.join(' ')}\n`);
    current = spawn(TSX, [join(ROOT, 'tools/bench', script), ...args], { cwd: ROOT, stdio: 'inherit' });
    current.once('exit', (code, signal) => {
      current = null;
      res(code ?? (signal ? 1 : 0));
    });
  });
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupted = true;
    // The benchmark cleans up (its processes, schema, keys) on SIGTERM; wait for it to exit.
    current?.kill('SIGTERM');
  });
}

void (async () => {
  const codes: number[] = [];
  codes.push(await run('runtime.ts', process.argv.slice(2)));
  if (!interrupted) codes.push(await run('gateway.ts', []));
  if (!interrupted) codes.push(await run('http-stack.ts', []));
  if (!interrupted) codes.push(await run('observability.ts', process.argv.includes('--quick') ? ['--quick'] : []));
  if (!interrupted) codes.push(await run('agent-manager.ts', []));
  if (!interrupted) codes.push(await run('documents.ts', []));
  if (!interrupted) codes.push(await run('mission-ally.ts', []));
  if (!interrupted) codes.push(await run('bridge.ts', []));
  if (!interrupted) codes.push(await run('client.ts', process.argv.includes('--quick') ? ['--quick'] : []));
  if (!interrupted) codes.push(await run('console.ts', process.argv.includes('--quick') ? ['--quick'] : []));
  process.exit(codes.find((c) => c !== 0) ?? 0);
})();
