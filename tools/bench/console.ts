/**
 * Console benchmark (issue 13): how fast the operator console's sessions page shows 1,000
 * sessions, and which live event rate its timeline keeps up with. Figures are printed, never
 * asserted.
 *
 *   npx tsx tools/bench/console.ts [--quick]
 *
 * Processes as deployed: observability and the gateway (serving apps/console/dist, built first
 * when missing or older than its sources) on a fresh PostgreSQL schema and BullMQ prefix; the
 * browser is Debian's Chromium (CHROMIUM_PATH, headless) through playwright-core.
 *
 * - First render: 1,000 sessions seeded through observability's ingest (POST /events through the
 *   gateway, with an ingest key); then, N times (5, --quick 3), a fresh page load of
 *   /console/sessions: time to the first row, and to the whole list read ("1,000 sessions", no
 *   loading left). Baseline, same run: reading the same 1,000 sessions over HTTP from Node
 *   (GET /api/observability/sessions, pages of 500, what the page itself reads), no browser.
 * - Live rate: one session open in the page (its timeline subscribed over observability's socket);
 *   events are ingested into it at a fixed rate for 5 s (--quick 3 s) per step, in batches every
 *   100 ms. "Applied/s" counts what the page applied (window.__console.eventsApplied); "lag" is
 *   how long after the last batch the page held every event; a step keeps up when the lag stays
 *   under 1 s.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { signToken } from '@tessera/kit';
import { ensureConsoleBuilt } from '../../apps/console/test/build';
import { freshSchema, entryOf } from '../../libs/kit/src/testing';
import { freePort, onCleanup, ROOT, runMain, sleep, spawnService } from './lib/proc';
import { fmt, int, markdown, pct } from './lib/stats';

type BrowserGlobals = { localStorage: { setItem(key: string, value: string): void }; __console: { eventsApplied: number } };

const QUICK = process.argv.includes('--quick');
const SESSIONS = 1000;
const LOADS = QUICK ? 3 : 5;
const STEP_S = QUICK ? 3 : 5;
const RATES = QUICK ? [200, 1000, 3000] : [200, 500, 1000, 2000, 5000];
const say = (s: string) => process.stdout.write(s + '\n');

async function main() {
  const id = randomBytes(4).toString('hex');
  const secret = `bench-secret-${randomBytes(16).toString('hex')}`;
  const appId = `bench-${id}`;
  const ingestKey = `ingest-${id}-0123456789abcdef`;
  const [schema, obsPort, gwPort] = await Promise.all([freshSchema(join(ROOT, 'apps/observability/prisma/migrations'), 'bench_console'), freePort(), freePort()]);
  onCleanup(() => schema.drop());
  const url = `http://127.0.0.1:${gwPort}`;
  const common = { NODE_ENV: 'production', LOG_LEVEL: 'warn', JWT_SECRET: secret, SERVICE_KEY: `bench-service-key-${id}`, HOST: '127.0.0.1', CORS_ORIGINS: url };
  say('building the console (when stale) and starting observability and the gateway…');
  const [built] = await Promise.all([
    ensureConsoleBuilt(),
    spawnService('observability', entryOf('observability'), { ...common, PORT: String(obsPort), DATABASE_URL: schema.url, BULL_PREFIX: `bench-console-${id}`, INGEST_KEYS: `${appId}:${ingestKey}` }, { port: obsPort }),
    spawnService(
      'gateway',
      entryOf('gateway'),
      { ...common, PORT: String(gwPort), OBSERVABILITY_URL: `http://127.0.0.1:${obsPort}`, RUNTIME_URL: 'off', BROKER_URL: 'off', AGENTS_URL: 'off', DOCUMENTS_URL: 'off', BRIDGE_URL: 'off', RATE_LIMIT_PER_MIN: '0' },
      { port: gwPort },
    ),
  ]);
  say(`console build: ${built}`);
  const token = await signToken(secret, { sub: 'bench-operator', apps: [appId], roles: ['operator'] }, { expiresIn: '1h' });
  const ingest = async (events: object[]) => {
    const r = await fetch(`${url}/api/observability/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ingest-key': ingestKey }, body: JSON.stringify({ events }) });
    const body = (await r.json()) as { accepted: number; rejected: number; results: { reason?: string }[] };
    if (!r.ok || body.rejected) throw new Error(`ingest refused: ${r.status} ${JSON.stringify(body.results.find((x) => x.reason))}`);
  };

  // 1,000 sessions, each a start and a message with token usage.
  const t0 = Date.now() - SESSIONS * 1000;
  for (let b = 0; b < SESSIONS; b += 500) {
    const events = [];
    for (let i = b; i < b + 500; i++) {
      const session_id = `bench-session-${String(i).padStart(4, '0')}`;
      const common = { session_id, app_id: appId, user_id: `user-${i % 37}`, agent_name: `agent-${i % 7}`, source: 'external' as const, session_name: `Bench session ${i}` };
      events.push({ ...common, event_type: 'session_start', event_id: `${session_id}-1`, timestamp: t0 + i * 1000 });
      events.push({ ...common, event_type: 'message', event_id: `${session_id}-2`, timestamp: t0 + i * 1000 + 1, role: 'assistant', content: [{ type: 'text', text: 'hello' }], usage: { input_tokens: 100 + i, output_tokens: 20 } });
    }
    await ingest(events);
  }
  const readAll = async () => {
    let cursor: string | null = null;
    let n = 0;
    do {
      const r = await fetch(`${url}/api/observability/sessions?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: { authorization: `Bearer ${token}` } });
      const page = (await r.json()) as { sessions: unknown[]; next_cursor: string | null };
      n += page.sessions.length;
      cursor = page.next_cursor;
    } while (cursor);
    return n;
  };
  for (let tries = 0; (await readAll()) < SESSIONS; tries++) {
    if (tries > 100) throw new Error('the seeded sessions did not all arrive');
    await sleep(200);
  }

  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'], headless: true });
  onCleanup(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  await page.goto(`${url}/console/`);
  // Runs in the page: the browser's globals, which this Node program's types do not declare.
  await page.evaluate((t) => (globalThis as unknown as BrowserGlobals).localStorage.setItem('tessera.console.token', t), token);

  const first: number[] = [];
  const full: number[] = [];
  const http: number[] = [];
  for (let i = 0; i < LOADS; i++) {
    const start = Date.now();
    await readAll();
    http.push(Date.now() - start);
    const t = Date.now();
    await page.goto(`${url}/console/sessions`);
    await page.locator('tr[data-session]').first().waitFor({ timeout: 30_000 });
    first.push(Date.now() - t);
    await page.locator('.count', { hasText: /^1,000 sessions$/ }).waitFor({ timeout: 30_000 });
    full.push(Date.now() - t);
  }
  say('');
  say(`## sessions page with ${int(SESSIONS)} sessions (${LOADS} page loads)`);
  say(
    markdown(
      ['measure', 'p50 ms', 'max ms'],
      [
        ['first row rendered (navigation → first row)', fmt(pct(first, 50), 0), fmt(Math.max(...first), 0)],
        [`whole list read and shown ("${int(SESSIONS)} sessions")`, fmt(pct(full, 50), 0), fmt(Math.max(...full), 0)],
        ['baseline: the same list over HTTP from Node (2 pages of 500)', fmt(pct(http, 50), 0), fmt(Math.max(...http), 0)],
      ],
    ),
  );

  // Live: one session's timeline open while events stream into it.
  const live = 'bench-live';
  await ingest([{ session_id: live, app_id: appId, event_type: 'session_start', event_id: 'live-0', source: 'external', session_name: 'Live bench' }]);
  await page.goto(`${url}/console/sessions/${live}`);
  await page.locator('[data-testid=timeline] li[data-seq]').first().waitFor({ timeout: 30_000 });
  const applied = () => page.evaluate(() => (globalThis as unknown as BrowserGlobals).__console.eventsApplied);
  let seq = 1;
  const rows: string[][] = [];
  for (const rate of RATES) {
    const before = await applied();
    const perBatch = Math.max(1, Math.round(rate / 10));
    const batches = STEP_S * 10;
    const start = Date.now();
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: perBatch }, () => {
        seq++;
        return { session_id: live, app_id: appId, event_type: 'message', event_id: `live-${seq}`, role: 'assistant', content: [{ type: 'text', text: `event ${seq}` }] };
      });
      await ingest(events);
      const due = start + (b + 1) * 100;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    const sentAt = Date.now();
    const sent = perBatch * batches;
    let got = (await applied()) - before;
    while (got < sent && Date.now() - sentAt < 15_000) {
      await sleep(20);
      got = (await applied()) - before;
    }
    const lag = Date.now() - sentAt;
    const wall = (Date.now() - start) / 1000;
    const sendWall = (sentAt - start) / 1000;
    rows.push([int(rate), int(sent / sendWall), int(got / wall), got >= sent ? `${fmt(lag, 0)} ms` : `behind by ${int(sent - got)}`, got >= sent && lag < 1000 ? 'yes' : 'no']);
  }
  say('');
  say(`## live timeline: events ingested into the open session, ${STEP_S} s per step`);
  say(markdown(['target ev/s', 'ingested ev/s', 'applied by the page ev/s', 'lag after the last batch', 'keeps up'], rows));
}

runMain(main, { deadlineMs: 10 * 60_000 });
