/**
 * Two agent-manager processes and a person editing files, all at once on one directory: every
 * agent stays whole. Writers PATCH description and prompt together (one token in both), so any
 * read that pairs one write's description with another's prompt is half an agent; the hand
 * edits (in place, as an editor saves) rewrite the MCP and status files meanwhile.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { http, operator, projectDir, spawnAgentManager, until, user } from './harness';

let project: Awaited<ReturnType<typeof projectDir>>;
let a: Awaited<ReturnType<typeof spawnAgentManager>>;
let b: Awaited<ReturnType<typeof spawnAgentManager>>;

beforeAll(async () => {
  project = await projectDir('race');
  [a, b] = await Promise.all([spawnAgentManager(project.dir), spawnAgentManager(project.dir)]);
}, 40_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await project?.remove();
});

const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
const tokenOf = (s: string) => /tok-(\d+)/.exec(s)?.[1];
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

test('two instances writing and a hand edit racing leave every agent whole, its history numbered without gap or duplicate', async () => {
  const [op, usr] = await Promise.all([operator(), user()]);
  for (const name of NAMES) {
    const r = await http(a.url, 'POST', '/agents', { token: op, body: { name, description: 'tok-0', system_prompt: 'prompt of tok-0' } });
    expect(r.status).toBe(201);
  }
  // The race runs until enough of each kind has happened (not for a fixed time: a busy machine does
  // fewer per second, and the claim is about what happens when they overlap, not how many fit).
  const ENOUGH = { writes: 80, reads: 80, handEdits: 20 };
  const cap = Date.now() + 60_000;
  let seq = 0;
  const refusals: string[] = [];
  const halves: string[] = [];
  let writes = 0;
  let reads = 0;
  let handEdits = 0;
  const racing = () => Date.now() < cap && (writes < ENOUGH.writes || reads < ENOUGH.reads || handEdits < ENOUGH.handEdits);
  const count = (r: { status: number; body: unknown }, what: string) => {
    if (r.status !== 200) refusals.push(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  };
  const check = (agent: any, where: string) => {
    if (tokenOf(agent.description) !== tokenOf(agent.system_prompt)) halves.push(`${where}: ${agent.description} / ${agent.system_prompt}`);
  };

  const writer = async (url: string) => {
    while (racing()) {
      const t = ++seq;
      const r = await http(url, 'PATCH', `/agents/${pick(NAMES)}`, { token: op, body: { description: `tok-${t}`, system_prompt: `prompt of tok-${t}` } });
      count(r, 'PATCH');
      if (r.status === 200) check(r.body, 'PATCH reply');
      writes++;
    }
  };
  const reader = async (url: string) => {
    while (racing()) {
      const one = Math.random() < 0.8;
      const r = await http(url, 'GET', one ? `/agents/${pick(NAMES)}` : '/agents', { token: usr });
      count(r, 'GET');
      if (r.status === 200) for (const agent of one ? [r.body] : r.body) check(agent, 'GET');
      if (!one && r.status === 200 && r.body.length !== NAMES.length) halves.push(`list of ${r.body.length}`);
      reads++;
    }
  };
  const handEditor = async () => {
    while (racing()) {
      const dir = join(project.agents, pick(NAMES));
      const n = ++handEdits;
      // In place, not renamed: a reader may meet the file half-written and must read it again.
      if (n % 2) await writeFile(join(dir, 'agent.mcp.json'), JSON.stringify({ mcpServers: { [`hand-${n}`]: { command: 'mcp-hand', args: [String(n)] } } }, null, 2));
      else await writeFile(join(dir, 'agent.status.json'), JSON.stringify({ status: n % 4 ? 'inactive' : 'active' }));
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all([writer(a.url), writer(a.url), writer(b.url), writer(b.url), reader(a.url), reader(b.url), reader(b.url), handEditor()]);

  expect(halves).toEqual([]);
  expect(refusals).toEqual([]);
  expect(writes).toBeGreaterThanOrEqual(ENOUGH.writes);
  expect(reads).toBeGreaterThanOrEqual(ENOUGH.reads);
  expect(handEdits).toBeGreaterThanOrEqual(ENOUGH.handEdits);

  // Once the watchers have looked at the last hand edits, the files, both instances and the history agree.
  await new Promise((r) => setTimeout(r, 500));
  for (const name of NAMES) {
    const dir = join(project.agents, name);
    expect((await readdir(dir)).filter((f) => f.startsWith('.'))).toEqual([]);
    const json = JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8'));
    const prompt = await readFile(join(dir, 'agent.system-prompt.md'), 'utf8');
    expect(JSON.parse(await readFile(join(dir, 'agent.mcp.json'), 'utf8'))).toHaveProperty('mcpServers');
    expect(tokenOf(json.description)).toBe(tokenOf(prompt));
    const [fromA, fromB] = await Promise.all([http(a.url, 'GET', `/agents/${name}`, { token: usr }), http(b.url, 'GET', `/agents/${name}`, { token: usr })]);
    expect(fromA.body).toEqual(fromB.body);
    expect(fromA.body.system_prompt).toBe(prompt);

    const files = (await readdir(join(project.versions, name))).filter((f) => f !== 'head.json').sort();
    const numbers = await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(project.versions, name, f), 'utf8')).version));
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    const newest = await until(async () => {
      const v = (await http(a.url, 'GET', `/agents/${name}/versions?limit=1`, { token: usr })).body.versions[0];
      return v.agent.system_prompt === prompt && v;
    }, 5_000, `${name}: newest version = the files`);
    expect(newest.version).toBeGreaterThanOrEqual(numbers.length);
  }
}, 60_000);
