/**
 * `npm start`: runs every service of the platform on this machine (infra is prepared by
 * start.sh), prints the URLs and a development token, and stops everything on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { SERVICES } from './services';

const root = resolve(__dirname, '../..');
const NOT_YET_DEPLOYED = ['OBSERVABILITY_URL', 'AGENTS_URL', 'DOCUMENTS_URL', 'BRIDGE_URL'];
const colors = [36, 35, 33, 32, 34, 31, 96, 95];
const children: { name: string; proc: ChildProcess }[] = [];
let stopping = false;

function prefixLines(name: string, color: number, chunk: Buffer, out: NodeJS.WriteStream) {
  for (const line of chunk.toString().split('\n')) if (line) out.write(`\x1b[${color}m${name.padEnd(16)}\x1b[0m ${line}\n`);
}

async function waitHealthy(port: number, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return true;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\n[tessera] stopping services...\n');
  for (const c of children) c.proc.kill('SIGTERM');
  const force = setTimeout(() => children.forEach((c) => c.proc.kill('SIGKILL')), 12_000);
  force.unref();
  let left = children.filter((c) => c.proc.exitCode === null).length;
  if (left === 0) process.exit(code);
  for (const c of children)
    c.proc.once('exit', () => {
      if (--left === 0) process.exit(code);
    });
}

async function main() {
  const tsx = resolve(root, 'node_modules/.bin/tsx');
  SERVICES.forEach((s, i) => {
    // Development stand-in for the host application's user context (document 000 §3).
    const env = { ...process.env, ...(s.app === 'broker' && !process.env.CONTEXT_FILE && { CONTEXT_FILE: resolve(__dirname, 'dev-context.json') }) };
    // Services that do not exist yet are "not deployed" for the gateway: 503 at once, left out of /ready.
    if (s.app === 'gateway') for (const v of NOT_YET_DEPLOYED) env[v] ??= 'off';
    const proc = spawn(tsx, [s.entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const color = colors[i % colors.length];
    proc.stdout!.on('data', (d) => prefixLines(s.name, color, d, process.stdout));
    proc.stderr!.on('data', (d) => prefixLines(s.name, color, d, process.stderr));
    proc.on('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`[tessera] ${s.name} exited (${signal ?? code}); stopping the rest\n`);
        stopAll(1);
      }
    });
    children.push({ name: s.name, proc });
  });
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));

  const ports = SERVICES.filter((s) => s.port);
  const ok = await Promise.all(ports.map((s) => waitHealthy(s.port!)));
  if (stopping) return;
  const bad = ports.filter((_, i) => !ok[i]).map((s) => s.name);
  if (bad.length) {
    process.stderr.write(`[tessera] not healthy after 30 s: ${bad.join(', ')}\n`);
    return stopAll(1);
  }
  const token = await signToken(process.env.JWT_SECRET ?? DEV_JWT_SECRET, { sub: 'dev-user', apps: ['demo-app'], name: 'Developer', tier: 'pro', permissions: ['read', 'write'] }, { expiresIn: '12h' });
  const lines = [
    '',
    'Tessera is running.',
    ...ports.map((s) => `  ${s.name.padEnd(16)} http://localhost:${s.port}`),
    '',
    '  API (everything goes through the gateway): http://localhost:8080  (OpenAPI: /openapi.json)',
    '',
    '  Development token (user dev-user, app demo-app, tier pro, valid 12 h):',
    `  export TOKEN=${token}`,
    '',
    '  curl http://localhost:8080/api/workflows',
    '  curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
    "       -d '{\"workflow_name\":\"assistant\"}' http://localhost:8080/api/mozaiks/session",
    '  then open the returned websocket_url with ?access_token=$TOKEN and send {"type":"user.input.submit","text":"hi"}',
    '  Ctrl-C stops everything `npm start` started.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

void main();
