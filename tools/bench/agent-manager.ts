/**
 * Agent-manager benchmark (issue 9): reads/s and writes/s of the service as deployed (one node
 * process, auth on, LOG_LEVEL=warn, a fresh project directory in the temp dir), next to a
 * baseline measured in the same run: bare `fs` reads of the same four files per agent, in this
 * process, at the same concurrency. Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/agent-manager.ts [--quick]
 *
 *   read one    GET /agents/{name}, a random one of N agents (BENCH_AM_AGENTS, 50)
 *   list        GET /agents (all N)
 *   write       PATCH /agents/{name} (a new system prompt), a random agent: lock, atomic writes, a version
 *   write one   the same, every writer on one agent (the lock's worst case)
 *   baseline    readFile of agent.json, agent.system-prompt.md, agent.mcp.json, agent.status.json + JSON.parse
 *
 * Each phase runs BENCH_AM_SECONDS (5; --quick 2) at BENCH_AM_CONCURRENCY (16) requests in flight.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '@tessera/kit';
import { TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { agent, httpCall } from './lib/http';
import { cleanup, cpuSecondsOf, freePort, onCleanup, runMain, spawnService } from './lib/proc';
import { fmt, int, pct, table } from './lib/stats';

const QUICK = process.argv.includes('--quick');
const AGENTS = Number(process.env.BENCH_AM_AGENTS ?? 50);
const SECONDS = Number(process.env.BENCH_AM_SECONDS ?? (QUICK ? 2 : 5));
const CONCURRENCY = Number(process.env.BENCH_AM_CONCURRENCY ?? 16);
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const say = (s: string) => process.stdout.write(s + '\n');
const names = Array.from({ length: AGENTS }, (_, i) => `bench-agent-${i}`);
const pick = () => names[Math.floor(Math.random() * names.length)];
const PROMPT = 'You are a careful assistant. '.repeat(40);

interface Phase {
  name: string;
  ops: number;
  seconds: number;
  lat: number[];
  cpu?: number;
  errors: number;
}

/** `op` by CONCURRENCY loops for SECONDS: operations/s and latency. */
async function run(name: string, op: () => Promise<boolean>, pid?: number): Promise<Phase> {
  const lat: number[] = [];
  let errors = 0;
  const cpu0 = pid ? cpuSecondsOf(pid) : NaN;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        if (!(await op())) errors++;
        lat.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { name, ops: lat.length, seconds, lat, errors, cpu: pid ? (cpuSecondsOf(pid) - cpu0) / seconds : undefined };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'bench-am-'));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const svc = await spawnService('agent-manager', entryOf('agent-manager'), {
    NODE_ENV: 'test',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: SECRET,
    AGENT_MANAGER_PROJECT_DIR: dir,
    RUNTIME_URL: 'off',
    OBSERVABILITY_URL: 'off',
  }, { port });
  const auth = { authorization: `Bearer ${await signToken(SECRET, { sub: 'bench', apps: ['demo-app'], roles: ['operator'] }, { expiresIn: '1h' })}` };
  for (const name of names) {
    const r = await httpCall(`${url}/agents`, 'POST', { name, description: `Agent ${name}`, system_prompt: PROMPT, skills: ['pdf'], mcp_servers: [{ name: 'fs', command: 'mcp-fs', args: ['/srv'] }] }, auth);
    if (r.status !== 201) throw new Error(`seeding ${name}: ${r.status} ${JSON.stringify(r.json)}`);
  }
  say(`agent manager: ${AGENTS} agents in ${dir}; ${SECONDS} s per phase, ${CONCURRENCY} in flight; 127.0.0.1, keep-alive`);

  // The token allows one app (demo-app): its agents' folder.
  const agentsDir = join(dir, '.agent-orchestrator/apps/demo-app/agents');
  const files = ['agent.json', 'agent.system-prompt.md', 'agent.mcp.json', 'agent.status.json'];
  const baseline = await run('baseline: bare fs reads (4 files + JSON.parse)', async () => {
    const [json, prompt, mcp, status] = await Promise.all(files.map((f) => readFile(join(agentsDir, pick(), f), 'utf8')));
    return !!JSON.parse(json) && prompt.length > 0 && !!JSON.parse(mcp) && !!JSON.parse(status);
  });
  const readOne = await run('GET /agents/{name}', async () => (await httpCall(`${url}/agents/${pick()}`, 'GET', undefined, auth)).status === 200, svc.pid);
  const list = await run(`GET /agents (${AGENTS} agents)`, async () => (await httpCall(`${url}/agents`, 'GET', undefined, auth)).status === 200, svc.pid);
  let n = 0;
  const write = await run('PATCH /agents/{name} (random agent)', async () => (await httpCall(`${url}/agents/${pick()}`, 'PATCH', { system_prompt: `${PROMPT} #${++n}` }, auth)).status === 200, svc.pid);
  const writeOne = await run('PATCH /agents/{name} (one agent, all writers)', async () => (await httpCall(`${url}/agents/${names[0]}`, 'PATCH', { system_prompt: `${PROMPT} #${++n}` }, auth)).status === 200, svc.pid);

  const rows = [baseline, readOne, list, write, writeOne].map((p) => [
    p.name,
    int(p.ops / p.seconds),
    fmt(pct(p.lat, 50), 2),
    fmt(pct(p.lat, 99), 2),
    p.cpu === undefined ? '-' : fmt(p.cpu * 100, 0) + '%',
    String(p.errors),
  ]);
  say('');
  say(table(['phase', 'ops/s', 'p50 ms', 'p99 ms', 'service CPU', 'errors'], rows));
  say('');
  say(`GET one agent: ${fmt((readOne.ops / readOne.seconds) / (baseline.ops / baseline.seconds) * 100, 1)}% of the bare fs read rate (HTTP, token check, 4 stats per read while the files are unchanged; a changed agent is read whole and checked again)`);
  say(`writes: ${int(write.ops)} PATCHes made ${int(write.ops)} versions; each: lock (mkdir), 2 files temp+fsync+rename, dir fsync, version + head (2 more)`);
  await svc.stop();
}

runMain(async () => {
  try {
    await main();
  } finally {
    agent.destroy();
    await cleanup();
  }
}, { deadlineMs: 180_000 });
