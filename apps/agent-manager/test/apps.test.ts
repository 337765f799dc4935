/**
 * Blueprints belong to an app (issue 17): another app's operator, user or the service key acting
 * for another app meets an agent exactly as a missing one, and changes nothing on disk; the same
 * name lives in two apps; which app a request acts in, for every kind of token.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { announcementsFlushed, appFolders, http, operator, serveProjectForThisFile, SERVICE_KEY, until, user, type Changes, type Instance, type Project } from './harness';

let project: Project, am: Instance, bus: Changes;
/** demo-app's operator and user; another app's; an operator of both; an operator of any app. */
let opDemo: string, usrDemo: string, opOther: string, usrOther: string, opBoth: string, opAny: string;

const DEMO = 'demo-app';
const OTHER = 'other-app';
const service = (app?: string) => ({ 'x-tessera-service-key': SERVICE_KEY, ...(app && { 'x-tessera-app': app }) });

beforeAll(async () => {
  [opDemo, usrDemo, opOther, usrOther, opBoth, opAny] = await Promise.all([
    operator('op-demo', [DEMO]),
    user('user-demo', [DEMO]),
    operator('op-other', [OTHER]),
    user('user-other', [OTHER]),
    operator('op-both', [DEMO, OTHER]),
    operator('op-any'),
  ]);
});
serveProjectForThisFile('apps', { extra: { DEFAULT_APP_ID: DEMO } }, (s) => ({ project, am, bus } = s));

/** A 404 with its body, the agent's name replaced: what a caller learns. */
const seen = async (r: Promise<{ status: number; body: any }>, name: string) => {
  const { status, body } = await r;
  return { status, body: JSON.parse(JSON.stringify(body).replaceAll(name, '<name>')) };
};

test("the finding: another app's operator cannot read, rewrite, deactivate, roll back or delete demo-app's agent; each answer is a missing name's, and the files stay", async () => {
  const created = await http(am.url, 'POST', '/agents', { token: opDemo, body: { name: 'demo-helper', description: 'helps demo-app', system_prompt: 'You are demo-app’s helper.' } });
  expect(created.status).toBe(201);
  expect((await http(am.url, 'PATCH', '/agents/demo-helper', { token: opDemo, body: { system_prompt: 'You are demo-app’s helper, v2.' } })).status).toBe(200);
  const dir = join(appFolders(project.dir, DEMO).agents, 'demo-helper');
  const before = await Promise.all(['agent.json', 'agent.system-prompt.md', 'agent.status.json'].map((f) => readFile(join(dir, f), 'utf8')));

  const tries = [
    ['GET', '/agents/{}', undefined],
    ['PATCH', '/agents/{}', { system_prompt: 'You now work for other-app.' }],
    ['PATCH', '/agents/{}/status', { status: 'inactive' }],
    ['PATCH', '/agents/{}/status?force=true', { status: 'inactive' }],
    ['DELETE', '/agents/{}', undefined],
    ['DELETE', '/agents/{}?force=true', undefined],
    ['GET', '/agents/{}/versions', undefined],
    ['GET', '/agents/{}/versions/1', undefined],
    ['POST', '/agents/{}/versions/1/restore', undefined],
  ] as const;
  for (const [method, path, body] of tries) {
    const asOther = await seen(http(am.url, method, path.replace('{}', 'demo-helper'), { token: opOther, body }), 'demo-helper');
    const missing = await seen(http(am.url, method, path.replace('{}', 'never-was'), { token: opOther, body }), 'never-was');
    expect([method, path, asOther]).toEqual([method, path, missing]);
    expect(asOther.status).toBe(404);
    // Another app's user reads no more than its operator.
    if (method === 'GET') expect(await seen(http(am.url, method, path.replace('{}', 'demo-helper'), { token: usrOther }), 'demo-helper')).toEqual(missing);
  }
  expect((await http(am.url, 'GET', '/agents', { token: opOther })).body).toEqual([]);
  expect((await http(am.url, 'GET', '/agents', { token: usrOther })).body).toEqual([]);

  // Unchanged: the files, the agent, its history; nothing announced but demo-app's own two changes.
  expect(await Promise.all(['agent.json', 'agent.system-prompt.md', 'agent.status.json'].map((f) => readFile(join(dir, f), 'utf8')))).toEqual(before);
  const mine = await http(am.url, 'GET', '/agents/demo-helper', { token: usrDemo });
  expect(mine.body).toMatchObject({ system_prompt: 'You are demo-app’s helper, v2.', status: 'active' });
  expect((await http(am.url, 'GET', '/agents/demo-helper/versions', { token: usrDemo })).body.versions.map((v: any) => v.change)).toEqual(['updated', 'created']);
  expect((await http(am.url, 'GET', '/agents', { token: usrDemo })).body.map((a: any) => a.name)).toEqual(['demo-helper']);
  expect(await readdir(join(project.dir, '.agent-orchestrator/apps'))).toEqual([DEMO]);
  const changes = await until(() => bus.changes.filter((c) => c.name === 'demo-helper').length >= 2 && bus.changes.filter((c) => c.name === 'demo-helper'), 5_000, 'announcements');
  await announcementsFlushed(bus, am.url, opAny);
  expect(bus.changes.filter((c) => c.name === 'demo-helper')).toHaveLength(2);
  expect(changes.map((c: any) => [c.app_id, c.kind, c.version])).toEqual([
    [DEMO, 'created', 1],
    [DEMO, 'updated', 2],
  ]);
});

test('the same name in two apps is two agents: each app creates, reads, changes and deletes its own', async () => {
  const body = (app: string) => ({ name: 'shared-name', description: `${app}'s`, system_prompt: `You serve ${app}.` });
  expect((await http(am.url, 'POST', '/agents', { token: opDemo, body: body(DEMO) })).status).toBe(201);
  expect((await http(am.url, 'POST', '/agents', { token: opOther, body: body(OTHER) })).status).toBe(201);
  // Taken in the app: 409 there.
  expect((await http(am.url, 'POST', '/agents', { token: opOther, body: body(OTHER) })).status).toBe(409);

  expect((await http(am.url, 'GET', '/agents/shared-name', { token: usrDemo })).body.system_prompt).toBe(`You serve ${DEMO}.`);
  expect((await http(am.url, 'GET', '/agents/shared-name', { token: usrOther })).body.system_prompt).toBe(`You serve ${OTHER}.`);
  expect(await readFile(join(appFolders(project.dir, OTHER).agents, 'shared-name/agent.system-prompt.md'), 'utf8')).toBe(`You serve ${OTHER}.`);

  expect((await http(am.url, 'PATCH', '/agents/shared-name', { token: opOther, body: { system_prompt: 'Changed in other-app.' } })).status).toBe(200);
  expect((await http(am.url, 'GET', '/agents/shared-name', { token: usrDemo })).body.system_prompt).toBe(`You serve ${DEMO}.`);
  expect((await http(am.url, 'DELETE', '/agents/shared-name', { token: opOther })).status).toBe(200);
  expect((await http(am.url, 'GET', '/agents/shared-name', { token: usrOther })).status).toBe(404);
  expect((await http(am.url, 'GET', '/agents/shared-name', { token: usrDemo })).status).toBe(200);
  // Histories are apart too.
  expect((await http(am.url, 'GET', '/agents/shared-name/versions', { token: usrDemo })).body.versions.map((v: any) => v.change)).toEqual(['created']);
  expect((await http(am.url, 'GET', '/agents/shared-name/versions', { token: usrOther })).body.versions.map((v: any) => v.change)).toEqual(['deleted', 'updated', 'created']);
  const announced = await until(() => bus.changes.filter((c) => c.name === 'shared-name').length >= 4 && bus.changes.filter((c) => c.name === 'shared-name'), 5_000, 'announcements');
  expect(announced.map((c: any) => [c.app_id, c.kind])).toEqual([
    [DEMO, 'created'],
    [OTHER, 'created'],
    [OTHER, 'updated'],
    [OTHER, 'deleted'],
  ]);
});

test('which app a request acts in: a token of several apps names one; none outside the token; the service key names one and reads only there', async () => {
  await http(am.url, 'POST', '/agents', { token: opOther, body: { name: 'other-only', description: 'd', system_prompt: 'p' } });

  // Several apps: name one, by query or header; none named is a 400 that says how.
  const unnamed = await http(am.url, 'GET', '/agents/other-only', { token: opBoth });
  expect(unnamed.status).toBe(400);
  expect(unnamed.body.error.message).toContain('name one with ?app_id= or x-tessera-app');
  expect((await http(am.url, 'GET', `/agents/other-only?app_id=${OTHER}`, { token: opBoth })).status).toBe(200);
  expect((await http(am.url, 'GET', '/agents/other-only', { token: opBoth, headers: { 'x-tessera-app': OTHER } })).status).toBe(200);
  expect((await http(am.url, 'GET', `/agents/other-only?app_id=${DEMO}`, { token: opBoth })).status).toBe(404);
  expect((await http(am.url, 'GET', `/agents/other-only?app_id=${OTHER}`, { token: opBoth, headers: { 'x-tessera-app': DEMO } })).status).toBe(400);
  expect((await http(am.url, 'PATCH', `/agents/other-only?app_id=${OTHER}`, { token: opBoth, body: { description: 'by both' } })).status).toBe(200);

  // An app the token does not allow: refused, whatever the name.
  for (const [token, app] of [
    [opDemo, OTHER],
    [usrDemo, OTHER],
    [opBoth, 'third-app'],
  ]) {
    const r = await http(am.url, 'GET', `/agents/other-only?app_id=${app}`, { token });
    expect([r.status, r.body.error.message]).toEqual([403, `token does not allow app "${app}"`]);
  }
  expect((await http(am.url, 'PATCH', `/agents/other-only?app_id=${OTHER}`, { token: opDemo, body: { system_prompt: 'x' } })).status).toBe(403);
  expect((await http(am.url, 'GET', '/agents?app_id=..', { token: opAny })).status).toBe(400);
  expect((await http(am.url, 'GET', '/agents', { token: opAny, headers: { 'x-tessera-app': 'a/b' } })).status).toBe(400);

  // A token of any app: the named app, else DEFAULT_APP_ID.
  expect((await http(am.url, 'GET', '/agents/other-only', { token: opAny })).status).toBe(404);
  expect((await http(am.url, 'GET', `/agents/other-only?app_id=${OTHER}`, { token: opAny })).body.description).toBe('by both');

  // The service key: one named app, reads only.
  const bare = await http(am.url, 'GET', '/agents/other-only', { headers: service() });
  expect(bare.status).toBe(400);
  expect(bare.body.error.message).toContain('the service key acts for one app');
  expect((await http(am.url, 'GET', '/agents/other-only', { headers: service(OTHER) })).status).toBe(200);
  expect(await seen(http(am.url, 'GET', '/agents/other-only', { headers: service(DEMO) }), 'other-only')).toEqual(
    await seen(http(am.url, 'GET', '/agents/never-was', { headers: service(DEMO) }), 'never-was'),
  );
  expect((await http(am.url, 'GET', `/agents?app_id=${DEMO}`, { headers: service() })).body.map((a: any) => a.name)).not.toContain('other-only');
  expect((await http(am.url, 'PATCH', '/agents/other-only', { headers: service(OTHER), body: { system_prompt: 'x' } })).status).toBe(401);
  expect((await http(am.url, 'GET', '/agents/other-only', { token: usrOther })).body.system_prompt).toBe('p');
});

test("a hand edit in an app's folder is that app's change", async () => {
  await http(am.url, 'POST', '/agents', { token: opOther, body: { name: 'by-hand', description: 'd', system_prompt: 'before' } });
  await writeFile(join(appFolders(project.dir, OTHER).agents, 'by-hand/agent.system-prompt.md'), 'after, by hand');
  const change = await until(() => bus.changes.find((c: any) => c.name === 'by-hand' && c.source === 'files'), 5_000, 'the hand edit announced');
  expect(change).toMatchObject({ app_id: OTHER, kind: 'updated', version: 2 });
  expect((await http(am.url, 'GET', '/agents/by-hand', { token: usrOther })).body.system_prompt).toBe('after, by hand');
  expect((await http(am.url, 'GET', '/agents/by-hand', { token: usrDemo })).status).toBe(404);
});
