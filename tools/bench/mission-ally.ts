/**
 * Mission Ally benchmark: N learners connected, each sending one message at the same moment;
 * message → `agent_processing_start` and → `agent_processing_end` p50/p99 with the scripted tutor
 * (mission_ally), next to the runtime's own chat protocol (document 003: `user.input.submit` →
 * the user's `chat.text` event, → `chat.run_complete`) on the same load in the same run: other
 * N learners, same workflow, same mission context, same message, same processes. Rounds alternate
 * which protocol goes first. Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/mission-ally.ts [learners=1000] [rounds=4]
 *
 * Round 1 is a warm-up of both (printed, not in the ratio); the ratio is the mean of the other
 * rounds' p50s.
 *
 * Processes: one API instance (`apps/runtime/src/main.ts`) and one turn worker
 * (`apps/runtime/src/worker.ts`) through tsx, a fresh PostgreSQL schema (dropped at the end), a
 * unique BullMQ prefix, auth on, OBSERVABILITY_EVENTS=false (no consumer runs here), LOG_LEVEL=warn.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import WebSocket from 'ws';
import { signToken } from '@tessera/kit';
import { freshSchema, TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { httpCall, pooled } from './lib/http';
import { freePort, onCleanup, ROOT, runMain, spawnService } from './lib/proc';
import { deleteKeys } from './lib/redis-keys';
import { fmt, pct, table } from './lib/stats';

const [N = 1000, ROUNDS = 4] = process.argv.slice(2).map(Number);
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const PREFIX = `bench-mission-${randomBytes(3).toString('hex')}`;
const APP = 'app1';
const MESSAGE = 'hello there';
const say = (s: string) => process.stdout.write(s + '\n');

interface Socket {
  ws: WebSocket;
  sentAt: number;
  start: number[];
  end: number[];
  ready: Promise<void>;
}

/** A socket whose timing marks are read from what the protocol sends. */
function open(url: string, kind: 'mission' | 'chat'): Socket {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const s: Socket = { ws, sentAt: 0, start: [], end: [], ready: Promise.resolve() };
  s.ready = new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', (code) => reject(new Error(`closed ${code}`)));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      const t = performance.now();
      if (kind === 'mission') {
        if (m.type === 'historical_messages') resolve();
        else if (m.type === 'agent_processing_start') s.start.push(t - s.sentAt);
        else if (m.type === 'agent_processing_end') s.end.push(t - s.sentAt);
      } else {
        if (m.type === 'chat_meta') resolve();
        else if (m.type === 'chat.text' && m.data.role === 'user') s.start.push(t - s.sentAt);
        else if (m.type === 'chat.run_complete') s.end.push(t - s.sentAt);
      }
    });
  });
  return s;
}

async function round(name: string, sockets: Socket[], send: (s: Socket) => void, turn: number): Promise<string[]> {
  const t0 = performance.now();
  for (const s of sockets) {
    s.sentAt = performance.now();
    send(s);
  }
  const deadline = Date.now() + 120_000;
  while (sockets.some((s) => s.end.length < turn) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const secs = (performance.now() - t0) / 1000;
  const starts = sockets.map((s) => s.start[turn - 1]).filter((x) => x !== undefined);
  const ends = sockets.map((s) => s.end[turn - 1]).filter((x) => x !== undefined);
  return [name, `${ends.length}/${sockets.length}`, `${fmt(pct(starts, 50))} / ${fmt(pct(starts, 99))}`, `${fmt(pct(ends, 50))} / ${fmt(pct(ends, 99))}`, fmt(ends.length / secs, 0)];
}

runMain(
  async () => {
    const { url: databaseUrl, drop } = await freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'bench_mission');
    onCleanup(drop);
    onCleanup(() => deleteKeys(TEST_REDIS_URL, `${PREFIX}:`));
    const env = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: databaseUrl,
      BULL_PREFIX: PREFIX,
      JWT_SECRET: SECRET,
      SERVICE_KEY: `bench-service-key-${randomBytes(8).toString('hex')}`,
      OBSERVABILITY_EVENTS: 'false',
      DOCUMENTS_URL: 'off',
      AGENTS_URL: 'off',
      HOST: '127.0.0.1',
      // One message per learner, all at once, from one address: the per-user budget is not what is measured.
      WS_USER_MESSAGES_PER_MINUTE: '0',
    };
    const port = await freePort();
    await Promise.all([
      spawnService('runtime', entryOf('runtime'), { ...env, PORT: String(port) }, { port }),
      spawnService('worker', entryOf('runtime-worker'), { ...env, LOG_LEVEL: 'info' }, { log: 'runtime worker ready' }),
    ]);
    const base = `http://127.0.0.1:${port}`;
    const ws = `ws://127.0.0.1:${port}`;
    const op = await signToken(SECRET, { sub: 'ops', apps: [APP], roles: ['operator'] }, { expiresIn: '2h' });
    const auth = { authorization: `Bearer ${op}` };
    const created = await httpCall(`${base}/api/v1/mission-ally/missions`, 'POST', {
      app_id: APP,
      title: 'Benchmark mission',
      checkpoints: [{ id: 'cp1', title: 'Never said', keyword: 'zzzz-never' }],
    }, auth);
    if (created.status !== 201) throw new Error(`mission: ${created.status} ${JSON.stringify(created.json)}`);
    const mission = created.json.id as string;

    say(`setting up ${N} mission learners and ${N} chat-protocol learners (same workflow, same mission context)…`);
    const users = Array.from({ length: 2 * N }, (_, i) => `learner-${i}`);
    const tokens = await Promise.all(users.map((u) => signToken(SECRET, { sub: u, apps: [APP] }, { expiresIn: '2h' })));
    await pooled(users.length, 32, async (i) => {
      const r = await httpCall(`${base}/api/v1/mission-ally/missions/${mission}/enrollments`, 'POST', { user_id: users[i] }, auth);
      if (r.status !== 201) throw new Error(`enroll: ${r.status}`);
    });
    // The chat-protocol half: its chats are the mission conversations, made by one mission connect each.
    await pooled(N, 32, async (i) => {
      const s = open(`${ws}/api/v1/mission-ally/ws?mission_id=${mission}&token=${tokens[N + i]}`, 'mission');
      await s.ready;
      s.ws.close();
    });
    const { enrollments } = (await httpCall(`${base}/api/v1/mission-ally/missions/${mission}/enrollments`, 'GET', undefined, auth)).json as { enrollments: { user_id: string; chat_id: string }[] };
    const chatOf = new Map(enrollments.map((e) => [e.user_id, e.chat_id]));

    const missionSockets = users.slice(0, N).map((_, i) => open(`${ws}/api/v1/mission-ally/ws?mission_id=${mission}&token=${tokens[i]}`, 'mission'));
    const chatSockets = users.slice(N).map((u, i) => open(`${ws}/ws/mission_ally/${APP}/${chatOf.get(u)}/${u}?access_token=${tokens[N + i]}`, 'chat'));
    await Promise.all([...missionSockets, ...chatSockets].map((s) => s.ready));
    say(`${2 * N} sockets open`);

    const sendMission = (s: Socket) => s.ws.send(JSON.stringify({ type: 'user_message', message: MESSAGE }));
    const sendChat = (s: Socket) => s.ws.send(JSON.stringify({ type: 'user.input.submit', text: MESSAGE }));
    const rows: string[][] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const order: [string, Socket[], (s: Socket) => void][] = [
        ['mission ally (document 002)', missionSockets, sendMission],
        ['chat protocol (document 003)', chatSockets, sendChat],
      ];
      if (r % 2 === 1) order.reverse();
      for (const [name, sockets, send] of order) {
        rows.push(await round(`round ${r}: ${name}`, sockets, send, r));
        await new Promise((res) => setTimeout(res, 2_000));
      }
    }
    say('');
    say(table(['protocol', 'answered', 'message→start p50/p99 ms', 'message→end p50/p99 ms', 'turns/s'], rows));
    const p50 = (name: string, col: number) => {
      const all = rows.filter((r) => r[0].includes(name) && !r[0].startsWith('round 1:')).map((r) => Number(r[col].split(' / ')[0]));
      return all.reduce((a, b) => a + b, 0) / all.length;
    };
    say('');
    say(`overhead (mean of round p50s, mission / chat): start ${fmt(p50('mission', 2) / p50('chat', 2), 3)}×, end ${fmt(p50('mission', 3) / p50('chat', 3), 3)}×`);
    for (const s of [...missionSockets, ...chatSockets]) s.ws.terminate();
  },
  { deadlineMs: 15 * 60_000 },
);
