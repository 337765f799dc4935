/**
 * Mission Ally's operator API: operator tokens only, scoped to the token's apps, fields named in
 * 400s, idempotent enrollment and seed, progress, an update that reaches the tutor, the OpenAPI.
 */
import fc from 'fast-check';
import { seedExampleMission, EXAMPLE_MISSION } from '../src/mission/seed';
import { http, startRuntime, testEnv, token, type Env, type RuntimeInstance } from './harness';
import { createMission, Learner, MISSION, missionUrl, operatorToken } from './mission-client';

/** Status and body with the id asked for written as <id>: what a prober could tell two ids apart by. */
const seen = (r: { status: number; body: unknown }, id: string) => ({ status: r.status, body: JSON.stringify(r.body).split(id).join('<id>') });

/** A socket's whole answer: every message, the close code and its reason. */
async function socketAnswer(url: string) {
  const l = Learner.open(url);
  const { code, reason } = await l.closed;
  return { code, reason, messages: l.messages };
}

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
  expect(list.body).toEqual({ missions: [] });
});

test("another app's mission answers exactly as a missing one (API and socket); mission ids are per app", async () => {
  const op = await operatorToken();
  const otherOp = await token('ops2', ['other-app'], { roles: ['operator'] });
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'probe-me' }, op)).status).toBe(201);
  expect((await http(rt.url, 'POST', `${BASE}/probe-me/enrollments`, { user_id: 'cy' }, op)).status).toBe(201);

  const asks: [string, string, unknown][] = [
    ['GET', '', undefined],
    ['PATCH', '', { title: 'Renamed' }],
    ['POST', '/enrollments', { user_id: 'cy' }],
    ['GET', '/enrollments', undefined],
    ['GET', '/enrollments/cy', undefined],
  ];
  for (const [method, tail, body] of asks) {
    const theirs = await http(rt.url, method, `${BASE}/probe-me${tail}`, body, otherOp);
    const none = await http(rt.url, method, `${BASE}/never-made${tail}`, body, otherOp);
    expect(theirs.status).toBe(404);
    expect(seen(theirs, 'probe-me')).toEqual(seen(none, 'never-made'));
  }
  // Creating the id in the other app is what creating a free id is (no 409 saying it exists): a mission of its own.
  const created = await http(rt.url, 'POST', BASE, { ...MISSION, id: 'probe-me', app_id: 'other-app', title: 'Theirs' }, otherOp);
  const fresh = await http(rt.url, 'POST', BASE, { ...MISSION, id: 'never-made', app_id: 'other-app', title: 'Theirs' }, otherOp);
  expect(created.status).toBe(201);
  expect(fresh.status).toBe(201);
  expect(created.body).toMatchObject({ id: 'probe-me', app_id: 'other-app', title: 'Theirs' });
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'probe-me', app_id: 'other-app' }, otherOp)).status).toBe(409);
  expect((await http(rt.url, 'POST', BASE, { ...MISSION, id: 'probe-me' }, op)).status).toBe(409);
  expect((await http(rt.url, 'GET', `${BASE}/probe-me`, undefined, op)).body).toMatchObject({ app_id: 'app1', title: MISSION.title });
  expect((await http(rt.url, 'GET', `${BASE}/probe-me`, undefined, otherOp)).body).toMatchObject({ app_id: 'other-app', title: 'Theirs' });
  const patched = await http(rt.url, 'PATCH', `${BASE}/probe-me`, { title: 'Theirs, renamed' }, otherOp);
  expect(patched.body).toMatchObject({ id: 'probe-me', app_id: 'other-app', title: 'Theirs, renamed' });
  expect((await http(rt.url, 'GET', `${BASE}/probe-me`, undefined, op)).body).toMatchObject({ title: MISSION.title });
  const enrolled = await http(rt.url, 'POST', `${BASE}/probe-me/enrollments`, { user_id: 'dee' }, otherOp);
  expect(enrolled).toMatchObject({ status: 201, body: { mission_id: 'probe-me', user_id: 'dee' } });
  expect(((await http(rt.url, 'GET', `${BASE}/probe-me/enrollments`, undefined, op)).body as { enrollments: { user_id: string }[] }).enrollments.map((e) => e.user_id)).toEqual(['cy']);
  expect(((await http(rt.url, 'GET', `${BASE}/probe-me/enrollments`, undefined, otherOp)).body as { enrollments: { user_id: string }[] }).enrollments.map((e) => e.user_id)).toEqual(['dee']);

  // The socket: a learner of a third app gets the same message, close code and reason for both ids.
  const stranger = await token('cy', ['third-app']);
  const theirs = await socketAnswer(missionUrl(rt.url, 'probe-me', stranger));
  expect(theirs).toEqual(await socketAnswer(missionUrl(rt.url, 'not-a-mission', stranger)));
  expect(theirs).toMatchObject({ code: 1008, messages: [{ type: 'error', message: 'Mission not found' }] });
  // cy is enrolled in app1's probe-me, not other-app's: to an other-app token it is "not enrolled", never app1's mission.
  expect((await socketAnswer(missionUrl(rt.url, 'probe-me', await token('cy', ['other-app'])))).messages).toEqual([{ type: 'error', message: 'You are not enrolled in this mission' }]);
  // Each app's learner reaches their own app's mission by the same id.
  for (const [user, apps, title] of [['dee', ['other-app'], 'Theirs, renamed'], ['cy', ['app1'], MISSION.title]] as const) {
    const l = Learner.open(missionUrl(rt.url, 'probe-me', await token(user, [...apps])));
    await l.until((m) => m.length >= 2);
    expect(l.messages[0]).toEqual({ type: 'connected', message: expect.stringContaining(title) });
    await l.close();
  }
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
  expect(list.body).toEqual({ enrollments: [expect.objectContaining({ user_id: 'bo', completed_checkpoints: ['cp_install'], progress: 50, status: 'active' })] });

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

test('property: whatever the list query holds (app_id repeated, nested, huge, hostile), never a 5xx, and the process lives', async () => {
  const op = await operatorToken();
  const pct = (s: string) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
  const value = fc.oneof(
    fc.constantFrom('app1', 'other-app', '', '%00', '%ZZ', '%ED%A0%80', 'x'.repeat(5_000), '1e20', '-1', 'NaN', '9'.repeat(400)),
    fc.string({ maxLength: 60 }).map(pct),
    fc.string({ unit: 'binary', maxLength: 30 }).map(pct),
  );
  const key = fc.constantFrom('app_id', 'app_id[]', 'app_id[0]', 'app_id[a]', 'app_id[__proto__]', 'limit', 'offset', 'cursor', '__proto__[x]', 'other');
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 6 }), async (pairs) => {
      const query = pairs.map(([k, v]) => `${k}=${v}`).join('&');
      const r = await http(rt.url, 'GET', `${BASE}?${query}`, undefined, op);
      expect(r.status).toBeLessThan(500);
      if (r.status === 200) expect(Array.isArray(r.body.missions)).toBe(true);
      else expect(r.body).toMatchObject({ error: { message: expect.any(String) } });
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 150) },
  );
  expect((await http(rt.url, 'GET', '/health')).status).toBe(200);
});
