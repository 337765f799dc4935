/**
 * The migration that keys sessions by (app_id, id) applies to a database holding data from
 * before: sessions of an app and of none, their events, and a tombstone, all read as before.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgConnectionString } from '@tessera/kit';
import { freshSchema } from '@tessera/kit/testing';
import { asService, http, ingest, MIGRATIONS, operator, startObservability, type Env, type Instance } from './harness';

const KEYED = '20261206100000_session_app_key';
let env: Env;
let obs: Instance;
let dir: string;

beforeAll(async () => {
  // The schema as it was: every migration before this one.
  dir = mkdtempSync(join(tmpdir(), 'obs-migrations-'));
  for (const d of readdirSync(MIGRATIONS).filter((x) => /^\d/.test(x) && x < KEYED)) cpSync(join(MIGRATIONS, d), join(dir, d), { recursive: true });
  const { url, schema, drop } = await freshSchema(dir, 'obs_migrate');
  const c = new pg.Client({ connectionString: pgConnectionString(url) });
  await c.connect();
  try {
    await c.query(`SET search_path TO "${schema}"`);
    await c.query(`INSERT INTO sessions (id, source, app_id, last_seq, event_count) VALUES ('old-1', 'external', 'app1', 2, 2), ('old-none', 'external', NULL, 1, 1)`);
    await c.query(
      `INSERT INTO events (session_id, seq, event_id, event_type, timestamp, received_at) VALUES
       ('old-1', 1, 'e1', 'session_start', now(), now()), ('old-1', 2, 'e2', 'message', now(), now()), ('old-none', 1, NULL, 'session_start', now(), now())`,
    );
    await c.query(`INSERT INTO tombstones (session_id) VALUES ('gone')`);
    // This migration on the data of before, then every one after it, as a deployment applies them.
    for (const d of readdirSync(MIGRATIONS).filter((x) => /^\d/.test(x) && x >= KEYED).sort()) await c.query(readFileSync(join(MIGRATIONS, d, 'migration.sql'), 'utf8'));
  } finally {
    await c.end();
  }
  env = { DATABASE_URL: url, BULL_PREFIX: `test-obs-migrate-${schema}`, dropSchema: drop };
  obs = await startObservability(env);
});
afterAll(async () => {
  await obs?.close();
  await env?.dropSchema();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('keeps sessions, events and tombstones of before, under their apps', async () => {
  const op1 = await operator(['app1']);
  const all = await operator('*');
  expect((await http(obs.url, 'GET', '/sessions/old-1', { token: op1 })).body).toMatchObject({ app_id: 'app1', event_count: 2 });
  expect((await http(obs.url, 'GET', '/events/old-1', { token: op1 })).body.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2]);
  expect((await http(obs.url, 'GET', '/sessions/old-none', { token: all })).body).toMatchObject({ app_id: null, event_count: 1 });
  expect((await http(obs.url, 'GET', '/sessions/old-none', { token: op1 })).status).toBe(404);
  // Stored event ids are still known (a retry is a duplicate) and the next seq follows.
  expect((await ingest(obs.url, { events: [{ event_type: 'message', session_id: 'old-1', event_id: 'e2' }, { event_type: 'message', session_id: 'old-1', event_id: 'e3' }] })).body).toMatchObject({ accepted: 1, duplicates: 1 });
  expect((await http(obs.url, 'GET', '/events/old-1?after=2', { token: op1 })).body.events).toMatchObject([{ seq: 3, event_id: 'e3' }]);
  // A deletion from before still holds, in every app.
  expect((await ingest(obs.url, { event_type: 'message', session_id: 'gone' })).body.results[0]).toMatchObject({ status: 'rejected', reason: 'the session was deleted' });
  expect((await asService(obs.url, { event_type: 'message', session_id: 'gone', app_id: 'app2' })).body.results[0]).toMatchObject({ status: 'rejected' });
});
