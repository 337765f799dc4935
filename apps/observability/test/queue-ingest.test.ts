import { resolve } from 'node:path';
import { Queue, type ObservedEvent } from '@tessera/contracts';
import { bullConnection, createLogger, TypedQueue } from '@tessera/kit';
import { closedPort, spawnService, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { http, operator, ROOT, serviceVars, sid, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let op: string;
let queue: TypedQueue<typeof Queue.ObservabilityEvents>;

beforeAll(async () => {
  env = await testEnv('queue');
  obs = await startObservability(env);
  op = await operator(['app1']);
  // As the runtime adds them (apps/runtime/src/services.ts).
  queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), createLogger('test', 'silent'), {
    prefix: env.BULL_PREFIX,
    defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { count: 10_000 } },
  });
});
afterAll(async () => {
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await obs?.close();
  await env?.dropSchema();
});

function runtimeEvent(chat: string, index: number, type: string, payload: Record<string, unknown>, usage: ObservedEvent['usage'] = null): ObservedEvent {
  return { session_id: chat, app_id: 'app1', user_id: 'u1', workflow_name: 'assistant', agent: 'helper', index, type, payload, usage, timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, index)).toISOString() };
}

/** A runtime turn as the timeline records it: the user's message, a tool call, a streamed reply, usage, the run's end. */
function turn(chat: string, from: number, status = 'completed'): ObservedEvent[] {
  const u = { prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 };
  return [
    runtimeEvent(chat, from, 'chat.text', { message_id: 'm1', agent: 'user', role: 'user', delta: 'hello', done: true, content: 'hello' }),
    runtimeEvent(chat, from + 1, 'chat.tool_call', { event_id: 't', tool_call_id: 'c1', tool_name: 'lookup', component: 'X', agent: 'helper', payload: { q: 'weather' }, awaiting_response: false, interaction_type: 'display', display: 'inline' }),
    runtimeEvent(chat, from + 2, 'chat.tool_call_complete', { event_id: 't', tool_call_id: 'c1', tool_name: 'lookup', response: { answer: 'sunny' } }),
    runtimeEvent(chat, from + 3, 'chat.text', { message_id: 'm2', agent: 'helper', role: 'assistant', delta: 'It is ', done: false }),
    runtimeEvent(chat, from + 4, 'chat.text', { message_id: 'm2', agent: 'helper', role: 'assistant', delta: 'sunny', done: true, content: 'It is sunny' }),
    runtimeEvent(chat, from + 5, 'chat.usage_delta', { ...u, agent: 'helper', model: 'scripted' }, u),
    runtimeEvent(chat, from + 6, 'chat.usage_summary', { ...u, turns: 1 }, u),
    runtimeEvent(chat, from + 7, 'chat.run_complete', { turn_id: 'x', status }),
  ];
}

describe('queue ingest', () => {
  it("stores the runtime's jobs as sessions with GenAI attributes, statuses and token usage", async () => {
    const chat = sid('chat');
    const first = turn(chat, 1);
    await queue.add({ events: first.slice(0, 3) });
    await queue.add({ events: first.slice(3) });
    // A redelivered job (same indexes) changes nothing.
    await queue.add({ events: first.slice(3) });
    const s = await until(async () => {
      const r = await http(obs.url, 'GET', `/sessions/${chat}`, { token: op });
      return r.status === 200 && r.body.event_count === 8 && r.body;
    }, 10_000, 'the chat as a session');
    // Every job done (a job put back for its predecessor is delayed, not done): the redelivery too.
    await until(async () => {
      const counts = await queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
      return Object.values(counts).every((n) => n === 0);
    }, 10_000, 'every job done');
    const after = (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body;
    expect(after).toMatchObject({ ...s, session_id: chat, source: 'runtime', app_id: 'app1', user_id: 'u1', workflow: 'assistant', agent_name: 'helper', status: 'finished', event_count: 8 });
    // Tokens from usage_delta only: the summary repeats the turn's total.
    expect(after.usage).toEqual({ input_tokens: 30, output_tokens: 12, total_tokens: 42 });
    const ev = (await http(obs.url, 'GET', `/events/${chat}`, { token: op })).body.events;
    expect(ev.map((e: { event_type: string }) => e.event_type)).toEqual(first.map((e) => e.type));
    expect(ev[0]).toMatchObject({ seq: 1, event_id: 'rt:1', role: 'user', content: [{ type: 'text', text: 'hello' }], attributes: { 'gen_ai.conversation.id': chat, 'gen_ai.operation.name': 'chat' } });
    expect(ev[1]).toMatchObject({ tool_name: 'lookup', tool_input: { q: 'weather' }, attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.agent.name': 'helper' } });
    expect(ev[2]).toMatchObject({ tool_output: { answer: 'sunny' } });
    expect(ev[4]).toMatchObject({ content: [{ type: 'text', text: 'It is sunny' }] });
    expect(ev[5].attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 30, 'gen_ai.usage.output_tokens': 12, 'gen_ai.operation.name': 'chat' });

    // A stopped run stops the session; only the next user message starts it again.
    await queue.add({ events: turn(chat, 9, 'stopped') });
    await until(async () => (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.status === 'stopped', 10_000, 'stopped');
    await queue.add({ events: turn(chat, 17).slice(0, 1) });
    await until(async () => (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.status === 'running', 10_000, 'running again');
  });

  it("a chat's later job that comes first waits for the earlier one, unseen meanwhile", async () => {
    const chat = sid('later');
    const events = turn(chat, 1);
    const later = await queue.add({ events: events.slice(4) });
    // Taken and put back to wait: the worker has looked at it.
    await until(async () => (await later.getState()) === 'delayed', 10_000, 'the later job put back');
    expect((await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).status).toBe(404);
    await queue.add({ events: events.slice(0, 4) });
    await until(async () => (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.event_count === 8, 10_000, 'both jobs stored');
    const ev = (await http(obs.url, 'GET', `/events/${chat}`, { token: op })).body.events;
    expect(ev.map((e: { seq: number; event_id: string }) => `${e.seq}:${e.event_id}`)).toEqual(events.map((e, i) => `${i + 1}:rt:${e.index}`));

    // Three jobs of one chat queued last first: stored in the timeline's order all the same.
    const other = sid('reversed');
    const all = [...turn(other, 1), ...turn(other, 9), ...turn(other, 17)];
    await queue.addBulk([all.slice(16), all.slice(8, 16), all.slice(0, 8)].map((part) => ({ data: { events: part } })));
    await until(async () => (await http(obs.url, 'GET', `/sessions/${other}`, { token: op })).body.event_count === 24, 10_000, 'three jobs stored');
    const stored = (await http(obs.url, 'GET', `/events/${other}`, { token: op })).body.events;
    expect(stored.map((e: { event_id: string }) => e.event_id)).toEqual(all.map((e) => `rt:${e.index}`));
  });

  it('drops only the event PostgreSQL cannot store; the rest of its job is stored in order', async () => {
    const chat = sid('poison');
    const events = turn(chat, 1);
    events[3] = runtimeEvent(chat, 4, 'chat.custom_event', { kind: 'x', payload: { text: 'nul \u0000 inside' } });
    await queue.add({ events });
    const s = await until(async () => {
      const r = await http(obs.url, 'GET', `/sessions/${chat}`, { token: op });
      return r.status === 200 && r.body.event_count === 7 && r.body;
    }, 10_000, 'seven events');
    expect(s).toMatchObject({ status: 'finished', usage: { input_tokens: 30 } });
    const ev = (await http(obs.url, 'GET', `/events/${chat}`, { token: op })).body.events;
    expect(ev.map((e: { event_id: string }) => e.event_id)).toEqual(['rt:1', 'rt:2', 'rt:3', 'rt:5', 'rt:6', 'rt:7', 'rt:8']);
  });

  it('a database out of reach puts jobs back without using up their attempts', async () => {
    const chat = sid('outage');
    // A queue of its own: only the workers of this test take its jobs.
    const prefix = `${env.BULL_PREFIX}-outage`;
    const own = new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), createLogger('test', 'silent'), {
      prefix,
      defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { count: 10_000 } },
    });
    const port = await closedPort();
    const down = new URL(env.DATABASE_URL);
    down.port = String(port);
    const spawnWorker = (databaseUrl: string) =>
      spawnService({
        name: 'obs-worker',
        entry: resolve(ROOT, entryOf('observability-worker')),
        cwd: ROOT,
        env: { ...serviceVars(env), BULL_PREFIX: prefix, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
        ready: { log: 'observability worker ready' },
        timeoutMs: 20_000,
      });
    let worker: ServiceProcess | null = null;
    try {
      worker = await spawnWorker(down.toString());
      const job = await own.add({ events: turn(chat, 1) });
      // Tried, put back, tried again: more than the job's three attempts would allow, none used.
      await until(async () => ((await own.queue.getJob(job.id!))?.attemptsStarted ?? 0) >= 4, 15_000, 'the job tried four times');
      const seen = (await own.queue.getJob(job.id!))!;
      expect(seen.attemptsMade).toBe(0);
      expect(worker.output()).toMatch(/database out of reach; job put back/);
      await worker.stop();
      worker = await spawnWorker(env.DATABASE_URL);
      await until(async () => (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.event_count === 8, 15_000, 'the job stored');
    } finally {
      await worker?.stop();
      await own.queue.obliterate({ force: true }).catch(() => undefined);
      await own.close();
    }
  }, 60_000);

  it('of two worker processes, one SIGKILLed mid-batch: nothing lost, nothing doubled, every chat in order', async () => {
    const chats = Array.from({ length: 40 }, (_, i) => `${sid('kill')}-${i}`);
    const perChat = 2000;
    const jobs: { data: { events: ObservedEvent[] } }[] = [];
    // 40 chats × 2,000 events in jobs of 500: 160 jobs, each chat's jobs interleaved with the others'.
    for (let from = 1; from <= perChat; from += 500) {
      for (const chat of chats) {
        const events: ObservedEvent[] = [];
        for (let i = from; i < from + 500; i++) {
          const u = i % 10 === 0 ? { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } : null;
          events.push(runtimeEvent(chat, i, u ? 'chat.usage_delta' : 'chat.text', { message_id: `m${i}`, agent: 'helper', role: 'assistant', delta: `word ${i} `, done: false, model: 'm' }, u));
        }
        jobs.push({ data: { events } });
      }
    }
    const workerEnv = { ...serviceVars(env), LOG_LEVEL: 'info', INGEST_CONCURRENCY: '4' };
    const spawnWorker = () =>
      spawnService({ name: 'obs-worker', entry: resolve(ROOT, entryOf('observability-worker')), cwd: ROOT, env: workerEnv, ready: { log: 'observability worker ready' }, timeoutMs: 20_000 });
    // The in-process instance's own worker stops taking jobs: the child process does the work.
    await obs.o.worker!.worker.pause(true);
    // Two worker processes share the queue; one of them is killed.
    let child: ServiceProcess | null = null;
    let other: ServiceProcess | null = null;
    try {
      [child, other] = await Promise.all([spawnWorker(), spawnWorker()]);
      await queue.addBulk(jobs);
      const count = async () => (await obs.o.s.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE session_id = ANY($1)', [chats])).rows[0].n;
      await until(async () => (await count()) > 20_000, 30_000, 'the worker to be busy');
      child.child.kill('SIGKILL');
      await new Promise<void>((r) => (child!.child.exitCode !== null || child!.child.signalCode !== null ? r() : child!.child.once('exit', () => r())));
      const atKill = await count();
      expect(atKill).toBeLessThan(chats.length * perChat);
      // BullMQ hands the killed worker's jobs to the other once their locks expire (lockDuration 10 s).
      await until(async () => (await count()) === chats.length * perChat, 60_000, 'every event stored');
      await until(async () => (await queue.depth()).active === 0 && (await queue.depth()).waiting === 0, 20_000, 'the queue drained');
    } finally {
      await Promise.all([child?.stop(), other?.stop()]);
      obs.o.worker!.worker.resume();
    }
    const per = await obs.o.s.db.pool.query<{ id: string; event_count: number; last_seq: number; input_tokens: string; n: number; max: number; distinct_ids: number; misplaced: number }>(
      `SELECT s.id, s.event_count, s.last_seq, s.input_tokens, count(e.*)::int AS n, max(e.seq) AS max, count(DISTINCT e.event_id)::int AS distinct_ids,
              count(*) FILTER (WHERE (e.attributes->>'tessera.index')::int <> e.seq)::int AS misplaced
       FROM sessions s JOIN events e ON e.app_id = s.app_id AND e.session_id = s.id WHERE s.id = ANY($1) GROUP BY s.app_id, s.id`,
      [chats],
    );
    expect(per.rows).toHaveLength(chats.length);
    for (const r of per.rows) {
      expect({ id: r.id, count: r.event_count, seq: r.last_seq, rows: r.n, max: r.max, ids: r.distinct_ids, misplaced: r.misplaced, tokens: Number(r.input_tokens) }).toEqual({
        id: r.id,
        count: perChat,
        seq: perChat,
        rows: perChat,
        max: perChat,
        ids: perChat,
        misplaced: 0,
        tokens: (perChat / 10) * 3,
      });
    }
  }, 120_000);
});
