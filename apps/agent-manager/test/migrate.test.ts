/**
 * Folders of before apps (`.agent-orchestrator/agents/*` and their history) become the default
 * app's at start: moved whole, history and all, by two instances starting at once, once; a
 * second start moves nothing; a name the default app already has is left for a person to merge.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { announcementsFlushed, appFolders, http, listenChanges, operator, projectDir, spawnAgentManager, startAgentManager, until } from './harness';

let project: Awaited<ReturnType<typeof projectDir>>;
const DEMO = 'demo-app';
const legacy = (dir: string) => ({ agents: join(dir, '.agent-orchestrator/agents'), versions: join(dir, '.agent-orchestrator/agent-versions') });

beforeAll(async () => {
  project = await projectDir('migrate');
});
afterAll(async () => {
  await project?.remove();
});

test('two instances starting on the old layout move every agent into DEFAULT_APP_ID once, history intact; a restart moves nothing', async () => {
  const op = await operator();
  const old = legacy(project.dir);
  // The old layout, as the agent manager of before wrote it (its layout is an app folder's now):
  // written by this one in app "before", then moved to where the old one kept it.
  const first = await startAgentManager(project.dir, { DEFAULT_APP_ID: DEMO });
  const inBefore = (path: string) => `${path}${path.includes('?') ? '&' : '?'}app_id=before`;
  await http(first.url, 'POST', inBefore('/agents'), { token: op, body: { name: 'kept', description: 'd', system_prompt: 'one' } });
  await http(first.url, 'PATCH', inBefore('/agents/kept'), { token: op, body: { system_prompt: 'two' } });
  await http(first.url, 'POST', inBefore('/agents'), { token: op, body: { name: 'gone', description: 'd', system_prompt: 'p' } });
  await http(first.url, 'DELETE', inBefore('/agents/gone'), { token: op });
  await http(first.url, 'POST', inBefore('/agents'), { token: op, body: { name: 'dup', description: 'd', system_prompt: 'the old one' } });
  // demo-app already has a "dup" of its own.
  await http(first.url, 'POST', '/agents', { token: op, body: { name: 'dup', description: 'd', system_prompt: "demo-app's own" } });
  await first.close();
  const before = appFolders(project.dir, 'before');
  await rename(before.agents, old.agents);
  await rename(before.versions, old.versions);
  await rm(join(project.dir, '.agent-orchestrator/apps/before'), { recursive: true });
  // And one a command-line tool made: no history.
  await mkdir(join(old.agents, 'cli-made'));
  await writeFile(join(old.agents, 'cli-made/agent.json'), JSON.stringify({ name: 'cli-made', description: 'by the CLI' }));
  await writeFile(join(old.agents, 'cli-made/agent.system-prompt.md'), 'Made by hand.');

  const bus = await listenChanges();
  const [a, b] = await Promise.all([spawnAgentManager(project.dir, { DEFAULT_APP_ID: DEMO }), spawnAgentManager(project.dir, { DEFAULT_APP_ID: DEMO })]);
  try {
    const demo = appFolders(project.dir, DEMO);
    expect((await readdir(demo.agents)).sort()).toEqual(['cli-made', 'dup', 'kept']);
    // cli-made's history begins at start (its files recorded as they are).
    expect((await readdir(demo.versions)).sort()).toEqual(['cli-made', 'dup', 'gone', 'kept']);
    // What could not move stays where it was; the rest of the old folders is gone.
    expect(await readdir(old.agents)).toEqual(['dup']);
    expect(await readdir(old.versions)).toEqual(['dup']);

    for (const url of [a.url, b.url]) {
      const get = (path: string) => http(url, 'GET', path, { token: op });
      expect((await get('/agents/kept')).body).toMatchObject({ system_prompt: 'two', status: 'active' });
      // The history came along: no version made by the move.
      expect((await get('/agents/kept/versions')).body.versions.map((v: any) => [v.version, v.change])).toEqual([
        [2, 'updated'],
        [1, 'created'],
      ]);
      expect((await get('/agents/gone')).status).toBe(404);
      expect((await get('/agents/gone/versions')).body.versions.map((v: any) => v.change)).toEqual(['deleted', 'created']);
      expect((await get('/agents/dup')).body.system_prompt).toBe("demo-app's own");
      expect((await get('/agents/cli-made')).body).toMatchObject({ description: 'by the CLI', system_prompt: 'Made by hand.' });
      expect((await get('/agents/cli-made/versions')).body.versions.map((v: any) => v.change)).toEqual(['edited_by_hand']);
      // Another app has none of them.
      expect((await get('/agents?app_id=before')).body).toEqual([]);
    }
    expect(await readFile(join(old.agents, 'dup/agent.system-prompt.md'), 'utf8')).toBe('the old one');
    // The CLI's agent is recorded once (two instances looked), in demo-app; the moved ones are not news.
    await until(() => bus.changes.some((c) => c.name === 'cli-made'), 5_000, 'cli-made announced');
    // Both instances recorded at start, before they listened: once each has announced a marker, whatever they announced at start is here.
    await Promise.all([announcementsFlushed(bus, a.url, op), announcementsFlushed(bus, b.url, op)]);
    const ours = bus.changes.filter((c) => ['cli-made', 'kept', 'gone', 'dup'].includes(c.name));
    expect(ours.map((c) => [c.app_id, c.name, c.kind, c.source, c.version])).toEqual([[DEMO, 'cli-made', 'created', 'files', 1]]);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    await bus.close();
  }

  // Again: nothing left to move, nothing changes.
  const again = await startAgentManager(project.dir, { DEFAULT_APP_ID: DEMO });
  try {
    expect((await http(again.url, 'GET', '/agents/kept/versions', { token: op })).body.versions).toHaveLength(2);
    expect((await http(again.url, 'GET', '/agents', { token: op })).body.map((x: any) => x.name)).toEqual(['cli-made', 'dup', 'kept']);
    expect(await readdir(old.agents)).toEqual(['dup']);
  } finally {
    await again.close();
  }
});
