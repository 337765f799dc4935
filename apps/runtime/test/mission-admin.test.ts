/**
 * Mission Ally's operator API: operator tokens only, scoped to the token's apps, fields named in
 * 400s, idempotent enrollment and seed, progress, an update that reaches the tutor, the OpenAPI.
 */
import { seedExampleMission, EXAMPLE_MISSION } from '../src/mission/seed';
import { http, startRuntime, testEnv, token, type Env, type RuntimeInstance } from './harness';
import { createMission, Learner, MISSION, missionUrl, operatorToken } from './mission-client';

let env: Env;
let rt: RuntimeInstance;
const BASE = '/api/v1/mission-ally/missions';

beforeAll(async () => {
  env = await testEnv('mission_admin');
  rt = await startRuntime(env);
});
afterAll(async () => {
  await rt?.close();
  await env?.dropSchema();
});

test('only an operator may create, read or enroll; another app is not found', async () => {
  const learner = await token('ada');
  expect((await http(rt.url, 'POST', BASE, MISSION, learner)).status).toBe(403);
  expect((await http(rt.url, 'GET', BASE, undefined, learner)).status).toBe(403);
  expect((await http(rt.url, 'GET', BASE)).status).toBe(401);
  const id = await createMission(rt.url, []);
  const otherOp = await token('ops2', ['other-app'], { roles: ['operator'] });
  expect((await http(rt.url, 'GET', `${BASE}/${id}`, undefined, otherOp)).status).toBe(404);
  expect((await http(rt.url, 'POST', `${BASE}/${id}/enrollments`, { user_id: 'x' }, otherOp)).status).toBe(404);
  expect((await http(rt.url, 'POST', BASE, MISSION, otherOp)).status).toBe(403);
  const list = await http(rt.url, 'GET', BASE, undefined, otherOp);
  expect(list.body).toEqual([]);
});

test('invalid bodies are 400s naming the field; a taken id is 409', async () => {
  const op = await operatorToken();
  const dup = await http(rt.url, 'POST', BASE, { ...MISSION, checkpoints: [MISSION.checkpoints[0], MISSION.checkpoints[0]] }, op);
  expect(dup.status).toBe(400);
  expect(JSON.stringify(dup.body)).toContain('duplicate checkpoint id');
  const wf = await http(rt.url, 'POST', BASE, { ...MISSION, workflow_name: 'no_such_tutor' }, op);
  expect(wf.status).toBe(400);
  expect((wf.body as { error: { message: string } }).error.message).toMatch(/workflow_name/);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, checkpoints: [] }, op)).status).toBe(400);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, title: 'a\u0000b' }, op)).status).toBe(400);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'bad id!' }, op)).status).toBe(400);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'taken' }, op)).status).toBe(201);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'taken' }, op)).status).toBe(409);
  expect((await http(rt.url, 'PATCH', `${BASE}/taken`, { checkpoints: 'x' }, op)).status).toBe(400);
  expect((await http(rt.url, 'GET', `${BASE}/${'x'.repeat(100)}`, undefined, op)).status).toBe(400);
});

test('enrollment is idempotent; progress is listed; an update reaches the tutor at the next connection', async () => {
  const op = await operatorToken();
  const id = await createMission(rt.url, ['bo']);
  const again = await http(rt.url, 'POST', `${BASE}/${id}/enrollments`, { user_id: 'bo' }, op);
  expect(again.status).toBe(200);
  expect(again.body).toMatchObject({ mission_id: id, user_id: 'bo', status: 'active', progress: 0, completed_checkpoints: [] });

  let l = Learner.open(missionUrl(rt.url, id, await token('bo')));
  await l.until((m) => m.length >= 2);
  l.say('I have installed it');
  await l.until((m) => m.some((x) => x.type === 'checkpoint_update'));
  await l.ends(1);
  await l.close();
  const list = await http(rt.url, 'GET', `${BASE}/${id}/enrollments`, undefined, op);
  expect(list.body).toEqual([expect.objectContaining({ user_id: 'bo', completed_checkpoints: ['cp_install'], progress: 50, status: 'active' })]);

  // A third checkpoint with its own keyword: progress is now 1 of 3, and the tutor knows the new one.
  const patched = await http(rt.url, 'PATCH', `${BASE}/${id}`, { checkpoints: [...MISSION.checkpoints, { id: 'cp_read', title: 'Read the timeline', keyword: 'timeline' }] }, op);
  expect(patched.status).toBe(200);
  expect((await http(rt.url, 'GET', `${BASE}/${id}/enrollments/bo`, undefined, op)).body).toMatchObject({ progress: 33.33 });
  l = Learner.open(missionUrl(rt.url, id, await token('bo')));
  await l.until((m) => m.length >= 2);
  l.say('I read the timeline');
  await l.until((m) => m.some((x) => x.type === 'checkpoint_update'));
  expect(l.messages.find((x) => x.type === 'checkpoint_update')).toEqual({ type: 'checkpoint_update', completed_checkpoints: ['cp_install', 'cp_read'], progress: 66.67 });
  await l.close();
  expect((await http(rt.url, 'GET', `${BASE}/${id}/enrollments/nobody`, undefined, op)).status).toBe(404);
});

test('the seed is idempotent and keeps progress; the routes are in the OpenAPI document', async () => {
  await seedExampleMission(rt.s.missions, ['dev-user'], 'app1');
  await rt.s.missions.record(EXAMPLE_MISSION.id, 'dev-user', ['checkpoint_1']);
  await seedExampleMission(rt.s.missions, ['dev-user'], 'app1');
  const e = await http(rt.url, 'GET', `${BASE}/${EXAMPLE_MISSION.id}/enrollments/dev-user`, undefined, await operatorToken());
  expect(e.body).toMatchObject({ completed_checkpoints: ['checkpoint_1'], progress: 33.33 });
  const doc = (await http(rt.url, 'GET', '/openapi.json')).body as { paths: Record<string, unknown> };
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining([BASE, `${BASE}/{mission_id}`, `${BASE}/{mission_id}/enrollments`, `${BASE}/{mission_id}/enrollments/{user_id}`]),
  );
});
