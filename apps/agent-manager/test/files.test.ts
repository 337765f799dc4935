/**
 * The files are shared with the command-line tools and with people: what they write while the
 * service runs is picked up, kept in the history and announced like an API change; what they
 * wrote is kept when the API rewrites a file.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { http, serveProjectForThisFile, until, type Changes, type Instance, type Project } from './harness';

let project: Project, am: Instance, bus: Changes, op: string, usr: string;
serveProjectForThisFile(
  'files',
  {
    // An agent the command-line tools made before the service ever ran: no status, no timestamps.
    prepare: async (p) => {
      await mkdir(join(p.agents, 'legacy'), { recursive: true });
      await writeFile(join(p.agents, 'legacy/agent.json'), JSON.stringify({ name: 'legacy', description: 'made by the CLI', model: 'opus' }));
      await writeFile(join(p.agents, 'legacy/agent.system-prompt.md'), 'You were made by hand.');
    },
  },
  (s) => ({ project, am, bus, op, usr } = s),
);

const changesOf = (name: string) => bus.changes.filter((c) => c.name === name);

test("an agent the tools made is read with defaults, found at start, and the tools' own fields survive an API change", async () => {
  const r = await http(am.url, 'GET', '/agents/legacy', { token: usr });
  expect(r.body).toMatchObject({ name: 'legacy', description: 'made by the CLI', system_prompt: 'You were made by hand.', mcp_servers: [], skills: [], status: 'active' });
  const versions = (await http(am.url, 'GET', '/agents/legacy/versions', { token: usr })).body.versions;
  expect(versions.map((v: any) => [v.version, v.change])).toEqual([[1, 'edited_by_hand']]);
  await http(am.url, 'PATCH', '/agents/legacy', { token: op, body: { skills: ['pdf'] } });
  expect(JSON.parse(await readFile(join(project.agents, 'legacy/agent.json'), 'utf8'))).toMatchObject({ name: 'legacy', model: 'opus', skills: ['pdf'] });
});

test('a hand edit of the prompt is picked up, recorded as a version and announced; the next API change keeps it in history', async () => {
  await http(am.url, 'POST', '/agents', { token: op, body: { name: 'edited', description: 'd', system_prompt: 'before' } });
  // As an editor saves: the file rewritten in place.
  await writeFile(join(project.agents, 'edited/agent.system-prompt.md'), 'after, by hand');
  const change = await until(() => changesOf('edited').find((c) => c.source === 'files'), 5_000, 'the hand edit announced');
  expect(change).toMatchObject({ kind: 'updated', version: 2, source: 'files', status: 'active' });
  expect((await http(am.url, 'GET', '/agents/edited', { token: usr })).body.system_prompt).toBe('after, by hand');

  await http(am.url, 'PATCH', '/agents/edited', { token: op, body: { description: 'through the API' } });
  const versions = (await http(am.url, 'GET', '/agents/edited/versions', { token: usr })).body.versions;
  expect(versions.map((v: any) => [v.version, v.change, v.agent.system_prompt])).toEqual([
    [3, 'updated', 'after, by hand'],
    [2, 'edited_by_hand', 'after, by hand'],
    [1, 'created', 'before'],
  ]);
  // Announced once, however many file events the edit made.
  expect(changesOf('edited').filter((c) => c.source === 'files')).toHaveLength(1);
});

test('a status edited by hand deactivates; an agent folder made or removed by hand is announced as created or deleted', async () => {
  await http(am.url, 'POST', '/agents', { token: op, body: { name: 'toggled', description: 'd', system_prompt: 'p' } });
  await writeFile(join(project.agents, 'toggled/agent.status.json'), '{"status":"inactive"}');
  expect(await until(() => changesOf('toggled').find((c) => c.source === 'files'), 5_000, 'status change')).toMatchObject({ kind: 'updated', status: 'inactive' });
  expect((await http(am.url, 'GET', '/agents/toggled', { token: usr })).body.status).toBe('inactive');

  // A tool making an agent the safe way: a folder prepared aside, renamed into place.
  const aside = join(project.dir, 'aside');
  await mkdir(aside);
  await writeFile(join(aside, 'agent.json'), JSON.stringify({ name: 'dropped-in', description: 'from a tool' }));
  await writeFile(join(aside, 'agent.system-prompt.md'), 'hello');
  await rename(aside, join(project.agents, 'dropped-in'));
  expect(await until(() => changesOf('dropped-in')[0], 5_000, 'created')).toMatchObject({ kind: 'created', source: 'files', version: 1 });

  await rm(join(project.agents, 'dropped-in'), { recursive: true });
  expect(await until(() => changesOf('dropped-in')[1], 5_000, 'deleted')).toMatchObject({ kind: 'deleted', source: 'files', version: 2 });
  expect((await http(am.url, 'GET', '/agents/dropped-in', { token: usr })).status).toBe(404);
});

test('a file edited into nonsense: that agent answers 409 naming the file, the list leaves it out, the API can delete it', async () => {
  await http(am.url, 'POST', '/agents', { token: op, body: { name: 'broken', description: 'd', system_prompt: 'p' } });
  await writeFile(join(project.agents, 'broken/agent.json'), '{"name": "broken", "description": ');
  const r = await http(am.url, 'GET', '/agents/broken', { token: usr });
  expect(r.status).toBe(409);
  expect(r.body.error).toMatchObject({ code: 'AGENT_UNREADABLE', message: expect.stringContaining('agent.json: invalid JSON') });
  const list = await http(am.url, 'GET', '/agents', { token: usr });
  expect(list.status).toBe(200);
  expect(list.body.map((a: any) => a.name)).not.toContain('broken');
  expect(list.body.map((a: any) => a.name)).toContain('legacy');
  expect((await http(am.url, 'PATCH', '/agents/broken', { token: op, body: { description: 'x' } })).status).toBe(409);
  expect((await http(am.url, 'DELETE', '/agents/broken', { token: op })).status).toBe(200);
  expect((await http(am.url, 'GET', '/agents/broken', { token: usr })).status).toBe(404);
  expect((await http(am.url, 'GET', '/health')).status).toBe(200);
});
