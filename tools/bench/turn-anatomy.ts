/**
 * What one turn costs in round trips: every PostgreSQL statement and Redis command that the API's
 * and the worker's code sends for a turn, counted by name (the runtime's services and turn worker
 * in this process, as `main.ts` and `worker.ts` wire them; the socket layer aside). Counts, not
 * times: they do not depend on what else the machine runs.
 *
 *   npx tsx tools/bench/turn-anatomy.ts [--turns 50]
 */
import { resolve } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { createLogger } from '@tessera/kit';
import { freshSchema, TEST_REDIS_URL } from '../../libs/kit/src/testing';
import { loadRuntimeConfig } from '../../apps/runtime/src/config';
import { createRuntimeServices } from '../../apps/runtime/src/services';
import { startTurnWorker } from '../../apps/runtime/src/turns/turn-worker';
import { ROOT } from './lib/proc';

const argv = process.argv.slice(2);
const TURNS = Number(argv[argv.indexOf('--turns') + 1]) || 50;
const CHATS = 10;

const pgCounts = new Map<string, number>();
const redisCounts = new Map<string, number>();
let counting = false;
const bump = (m: Map<string, number>, k: string) => counting && m.set(k, (m.get(k) ?? 0) + 1);

// Every statement, whoever sends it (our prepared statements, Prisma's adapter, BullMQ's Lua).
const pgQuery = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
  const c = config as { name?: string; text?: string } | string;
  const name = typeof c === 'string' ? c : (c?.name ?? c?.text ?? '?');
  bump(pgCounts, name.replace(/\s+/g, ' ').trim().slice(0, 60));
  return (pgQuery as (...a: unknown[]) => unknown).call(this, config, ...rest);
} as typeof pgQuery;
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, command: { name: string }, ...rest: unknown[]) {
  bump(redisCounts, command.name);
  return (sendCommand as (...a: unknown[]) => unknown).call(this, command, ...rest);
} as typeof sendCommand;

async function main() {
  const schema = await freshSchema(resolve(ROOT, 'apps/runtime/prisma/migrations'), 'bench_anatomy');
  const config = loadRuntimeConfig({
    DATABASE_URL: schema.url,
    REDIS_URL: TEST_REDIS_URL,
    BULL_PREFIX: `anatomy-${process.pid}`,
    WORKFLOWS_DIR: resolve(ROOT, 'tools/bench/workflows'),
    LOG_LEVEL: 'warn',
    DOCUMENTS_URL: 'off',
    AGENTS_URL: 'off',
  } as unknown as NodeJS.ProcessEnv);
  const logger = createLogger('anatomy', 'warn');
  const api = createRuntimeServices(config, logger, 'api');
  const worker = createRuntimeServices(config, logger, 'worker');
  const w = await startTurnWorker(worker);
  try {
    const chats = await Promise.all(
      Array.from({ length: CHATS }, async (_, i) => (await api.starter.start({ appId: 'app1', userId: `u${i}`, workflowName: 'bench', backendContext: null, uiContext: null })).chat),
    );
    const turn = async (chat: (typeof chats)[number], text: string) => {
      const before = await api.timeline.lastIndex(chat.id);
      await api.chatInputs.submitMessage(chat, text);
      for (;;) {
        const events = await api.timeline.after(chat.id, before, 1000);
        if (events.some((e) => e.type === 'chat.run_complete')) return events.length;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    // Warm-up: the first turn of a chat also sets its status.
    await Promise.all(chats.map((c) => turn(c, 'warm')));
    await new Promise((r) => setTimeout(r, 300));
    counting = true;
    let events = 0;
    const perChat = Math.ceil(TURNS / CHATS);
    await Promise.all(chats.map(async (c) => {
      for (let t = 0; t < perChat; t++) {
        const n = await turn(c, `turn ${t}`);
        events += n;
      }
    }));
    // What the turn leaves for later (observability's window, BullMQ's bookkeeping).
    await new Promise((r) => setTimeout(r, 500));
    counting = false;
    const turns = perChat * CHATS;
    // The counting loop's own reads (timeline.after, lastIndex) are the benchmark's, not a turn's.
    for (const k of [...pgCounts.keys()]) if (k === 'timeline-after' || k === 'timeline-last-index') pgCounts.delete(k);
    const show = (title: string, m: Map<string, number>) => {
      const rows = [...m].sort((a, b) => b[1] - a[1]);
      const total = rows.reduce((s, [, n]) => s + n, 0);
      process.stdout.write(`\n${title}: ${(total / turns).toFixed(1)} per turn\n`);
      for (const [k, n] of rows) process.stdout.write(`  ${(n / turns).toFixed(2).padStart(6)}  ${k}\n`);
    };
    process.stdout.write(`turn anatomy: ${turns} turns of the bench workflow (20-word scripted reply) over ${CHATS} chats, ${(events / turns).toFixed(1)} events per turn\n`);
    process.stdout.write('(the polling of this script is left out; the chat socket layer is not in this process)\n');
    show('PostgreSQL statements', pgCounts);
    show('Redis commands (evalsha: a BullMQ Lua script)', redisCounts);
  } finally {
    await w.close();
    await Promise.all([worker.close(), api.close()]);
    await schema.drop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
