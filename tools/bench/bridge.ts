/**
 * Bridge benchmark (issue 11): two bridge instances as deployed (node processes, LOG_LEVEL=warn,
 * the real `opencode serve` as agent server, in the default sandbox) on one Redis. Figures are
 * printed, never asserted. Each (scadaUrl, accessToken) pair is bootstrapped by a user of its own
 * with a platform token, as a SCADA frontend does (the per-user quota never binds); the servers
 * list is read with an operator's.
 *
 *   npx tsx tools/bench/bridge.ts [--quick]
 *
 *   cold bootstrap   POST /api/session/bootstrap of a new pair: an agent server started and ready (sequential)
 *   reuse bootstrap  the same for a pair whose server runs (BENCH_BRIDGE_CONCURRENCY in flight, spread over both instances)
 *   idle RSS         resident memory of each agent server's process group after it idled
 *   fan-out          POST /api/session/{id}/events on instance A → 100 sockets of the session, half on each instance;
 *                    baseline: tools/bench/bare-ws-server.ts (Redis PUBLISH → ws broadcast, nothing else) with 100
 *                    sockets on one channel, fed by PUBLISH at the same concurrency, in the same run
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { signToken } from '@tessera/kit';
import { TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { agent, httpCall, pooled } from './lib/http';
import { cleanup, freePort, onCleanup, rssOf, runMain, sleep, spawnService } from './lib/proc';
import { fmt, int, pct, table } from './lib/stats';

const QUICK = process.argv.includes('--quick');
const COLD = Number(process.env.BENCH_BRIDGE_COLD ?? (QUICK ? 3 : 8));
const REUSE = Number(process.env.BENCH_BRIDGE_REUSE ?? (QUICK ? 200 : 1000));
const CONCURRENCY = Number(process.env.BENCH_BRIDGE_CONCURRENCY ?? 8);
const SOCKETS = Number(process.env.BENCH_BRIDGE_SOCKETS ?? 100);
const SECONDS = Number(process.env.BENCH_BRIDGE_SECONDS ?? (QUICK ? 3 : 6));
const PREFIX = `bench:bridge:${process.pid}`;
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const APP = 'bench-app';
const say = (s: string) => process.stdout.write(s + '\n');
const pairOf = (i: number) => ({ scadaUrl: `https://scada-${i}.bench.example.com`, accessToken: `bench-access-${PREFIX}-${i}` });

/** Resident bytes of every process in a group (the server and whatever it started). */
function groupRss(pgid: number): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

async function openSockets(urls: string[]): Promise<{ sockets: WebSocket[]; count: () => number }> {
  let received = 0;
  const sockets = await Promise.all(
    urls.map(
      (url) =>
        new Promise<WebSocket>((res, rej) => {
          const ws = new WebSocket(url, { perMessageDeflate: false });
          ws.on('message', () => received++);
          ws.once('open', () => res(ws));
          ws.once('error', rej);
        }),
    ),
  );
  return { sockets, count: () => received };
}

/** `publish` by CONCURRENCY loops for SECONDS; what the sockets received meanwhile. */
async function fanout(publish: () => Promise<unknown>, count: () => number): Promise<{ published: number; delivered: number; seconds: number }> {
  await sleep(300);
  const c0 = count();
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  let published = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        await publish();
        published++;
      }
    }),
  );
  // What was published must arrive: wait for the tail (bounded).
  const want = c0 + published * SOCKETS;
  const drainUntil = performance.now() + 10_000;
  while (count() < want && performance.now() < drainUntil) await sleep(20);
  const seconds = (performance.now() - t0) / 1000;
  return { published, delivered: count() - c0, seconds };
}

async function main() {
  const redis = new Redis(TEST_REDIS_URL);
  onCleanup(async () => {
    const keys = await redis.keys(`${PREFIX}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    agent.destroy();
  });
  const [pa, pb] = [await freePort(), await freePort()];
  const env = (port: number) => ({
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    BRIDGE_REDIS_PREFIX: PREFIX,
    OBSERVABILITY_URL: 'off',
    OPENCODE_BASE_PORT: '32000',
    OPENCODE_MAX_PORT: '32099',
    OPENCODE_MAX_SERVERS: String(COLD + 2),
    // One user per pair: the app holds every cold start's server.
    OPENCODE_MAX_SERVERS_PER_APP: String(COLD + 2),
    JWT_SECRET: SECRET,
    AUTH_ENABLED: 'true',
    CORS_ORIGINS: '*',
  });
  const a = await spawnService('bridge-a', entryOf('bridge'), env(pa), { port: pa });
  const b = await spawnService('bridge-b', entryOf('bridge'), env(pb), { port: pb });
  const A = `http://127.0.0.1:${pa}`;
  const B = `http://127.0.0.1:${pb}`;
  say(`bridge benchmark: two instances, ${COLD} cold starts, ${REUSE} reuses at ${CONCURRENCY} in flight, ${SOCKETS} sockets for ${SECONDS} s${QUICK ? ' (quick)' : ''}`);

  // Pair i's user, and an operator of the app for the servers list.
  const userAuth = await Promise.all(Array.from({ length: COLD }, async (_, i) => ({ authorization: `Bearer ${await signToken(SECRET, { sub: `bench-user-${i}`, apps: [APP] }, { expiresIn: '1h' })}` })));
  const operatorAuth = { authorization: `Bearer ${await signToken(SECRET, { sub: 'bench-operator', apps: [APP], roles: ['operator'] }, { expiresIn: '1h' })}` };

  const cold: number[] = [];
  const sessions: { sessionId: string; sessionToken: string }[] = [];
  for (let i = 0; i < COLD; i++) {
    const t0 = performance.now();
    const r = await httpCall(`${A}/api/session/bootstrap`, 'POST', pairOf(i), userAuth[i]);
    if (r.status !== 200 || !r.json.isNew || r.json.appId !== APP || r.json.userId !== `bench-user-${i}`) throw new Error(`cold bootstrap: ${r.status} ${JSON.stringify(r.json)}`);
    cold.push(performance.now() - t0);
    sessions.push(r.json);
  }

  const reuse = await pooled(REUSE, CONCURRENCY, async (i) => {
    const t0 = performance.now();
    const r = await httpCall(`${i % 2 ? B : A}/api/session/bootstrap`, 'POST', pairOf(i % COLD), userAuth[i % COLD]);
    if (r.status !== 200 || r.json.isNew) throw new Error(`reuse bootstrap: ${r.status} ${JSON.stringify(r.json)}`);
    return performance.now() - t0;
  });

  await sleep(3_000);
  const listed = await httpCall(`${A}/api/session/servers`, 'GET', undefined, operatorAuth);
  if (listed.status !== 200 || listed.json.servers.length !== COLD) throw new Error(`servers list: ${listed.status} ${JSON.stringify(listed.json).slice(0, 500)}`);
  const servers = listed.json.servers as { pid: number }[];
  const rss = servers.map((s) => groupRss(s.pid));

  say('');
  say(table(
    ['bootstrap', 'n', 'p50 ms', 'p99 ms', 'max ms'],
    [
      ['cold (server started)', String(cold.length), fmt(pct(cold, 50)), fmt(pct(cold, 99)), fmt(Math.max(...cold))],
      ['reuse', String(reuse.length), fmt(pct(reuse, 50), 2), fmt(pct(reuse, 99), 2), fmt(Math.max(...reuse), 2)],
    ],
  ));
  say('');
  say(`idle agent server RSS (process group, ${rss.length} servers): p50 ${int(pct(rss, 50) / 2 ** 20)} MB, max ${int(Math.max(...rss) / 2 ** 20)} MB; bridge process A RSS ${int(rssOf(a.pid) / 2 ** 20)} MB`);

  // Fan-out through the bridge: one session, sockets split over both instances, events posted to A.
  const s = sessions[0];
  const wsUrl = (base: string) => `${base.replace('http', 'ws')}/api/session/${s.sessionId}/ws?sessionToken=${s.sessionToken}`;
  const bridgeSockets = await openSockets(Array.from({ length: SOCKETS }, (_, i) => wsUrl(i % 2 ? B : A)));
  const payload = { type: 'entity.updated', payload: { entityType: 'Signal', entityId: 'signal-123', changedFields: ['name', 'description'] } };
  const viaBridge = await fanout(() => httpCall(`${A}/api/session/${s.sessionId}/events`, 'POST', payload, { authorization: `Bearer ${s.sessionToken}` }), bridgeSockets.count);
  for (const ws of bridgeSockets.sockets) ws.terminate();

  // Baseline, same run: bare ws broadcast from Redis pub/sub, the same message size.
  const bp = await freePort();
  await spawnService('bare-ws', 'tools/bench/bare-ws-server.ts', { BARE_PORT: String(bp), REDIS_URL: TEST_REDIS_URL, BARE_CHANNEL_PREFIX: PREFIX }, { port: bp });
  const bareSockets = await openSockets(Array.from({ length: SOCKETS }, () => `ws://127.0.0.1:${bp}/ws/w/app/bench-chat/u`));
  const wire = JSON.stringify({ type: 'session.event', sessionId: s.sessionId, timestamp: new Date().toISOString(), payload });
  const bare = await fanout(() => redis.publish(`${PREFIX}:chat:bench-chat:events`, wire), () => bareSockets.count() - SOCKETS /* chat_meta */);
  for (const ws of bareSockets.sockets) ws.terminate();

  say('');
  say(table(
    ['fan-out to ' + SOCKETS + ' sockets', 'events/s published', 'deliveries/s', 'delivered'],
    [
      ['bridge (POST on A, sockets on A+B)', fmt(viaBridge.published / viaBridge.seconds, 0), int(viaBridge.delivered / viaBridge.seconds), `${int(viaBridge.delivered)}/${int(viaBridge.published * SOCKETS)}`],
      ['baseline: bare ws (PUBLISH)', fmt(bare.published / bare.seconds, 0), int(bare.delivered / bare.seconds), `${int(bare.delivered)}/${int(bare.published * SOCKETS)}`],
    ],
  ));

  await a.stop();
  await b.stop();
  const left = servers.filter((x) => {
    try {
      readFileSync(`/proc/${x.pid}/stat`);
      return true;
    } catch {
      return false;
    }
  });
  say(`\nagent servers left after both bridges stopped: ${left.length}`);
  await cleanup();
}

runMain(main, { deadlineMs: 10 * 60_000 });
