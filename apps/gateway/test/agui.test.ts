import { randomBytes } from 'node:crypto';
import { EventType, HttpAgent, type BaseEvent, type HttpAgentFetchFn, type Message, type RunFinishedEvent, type TextMessageContentEvent, type CustomEvent } from '@ag-ui/client';
import { call } from '@tessera/kit/testing';
import { token, type TestGateway } from './support';
import { startTwoInstanceStack, type HttpService, type RuntimeStack, type TwoInstanceStack } from './stack';

/**
 * AG-UI over Tessera chats (apps/runtime/src/agui), as a frontend sees it: `HttpAgent` from
 * @ag-ui/client posts a RunAgentInput through the gateway and assembles the SSE events, with
 * the real runtime (two API instances and a worker) behind it.
 */

const SERVICE_KEY = 'agui-service-key-0123456789abcdef';
const KEEP_ALIVE_MS = 400;
const APP = 'demo-app';

let stack: TwoInstanceStack;
let runtime: RuntimeStack;
let second: HttpService;
let gw: TestGateway;
let alice: string;
let bob: string;

const runPath = (workflow: string) => `/api/agui/${APP}/${workflow}`;
const uid = (p: string) => `${p}-${randomBytes(4).toString('hex')}`;

function agentFor(workflow: string, who: string, threadId = uid('thread'), fetchFn?: HttpAgentFetchFn): { agent: HttpAgent; events: BaseEvent[] } {
  const agent = new HttpAgent({ url: `${gw.url}${runPath(workflow)}`, headers: { authorization: `Bearer ${who}` }, threadId, ...(fetchFn && { fetch: fetchFn }) });
  const events: BaseEvent[] = [];
  agent.subscribe({ onEvent: ({ event }) => void events.push(event) });
  return { agent, events };
}

/** What a person reads of a conversation: roles, texts, tool calls and results, without generated ids. */
function readable(messages: Message[]) {
  return messages.map((m) => ({
    role: m.role,
    content: 'content' in m ? m.content : undefined,
    toolCalls: 'toolCalls' in m ? m.toolCalls?.map((t) => ({ name: t.function.name, args: t.function.arguments })) : undefined,
  }));
}

const finished = (events: BaseEvent[]) => events.find((e) => e.type === EventType.RUN_FINISHED) as RunFinishedEvent | undefined;

/** One SSE response, read whole: each event's id and parsed data. */
async function rawRun(base: string, workflow: string, who: string, body: unknown, lastEventId?: string) {
  const res = await fetch(`${base}${runPath(workflow)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who}`, 'content-type': 'application/json', accept: 'text/event-stream', ...(lastEventId && { 'last-event-id': lastEventId }) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const events = text
    .split('\n\n')
    .filter((b) => /^data: /m.test(b))
    .map((b) => ({ id: /^id: (.*)$/m.exec(b)?.[1], event: JSON.parse(/^data: (.*)$/m.exec(b)?.[1] as string) as BaseEvent }));
  return { status: res.status, type: res.headers.get('content-type'), text, events };
}

/** Posts a run and hangs up after its first event (RUN_STARTED): that event's SSE id. */
async function firstEventId(base: string, workflow: string, who: string, body: unknown): Promise<string> {
  const abort = new AbortController();
  const res = await fetch(`${base}${runPath(workflow)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body),
    signal: abort.signal,
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = '';
  while (!text.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  abort.abort();
  const id = /^id: (.*)$/m.exec(text)?.[1];
  expect(JSON.parse(/^data: (.*)$/m.exec(text)?.[1] ?? 'null')).toMatchObject({ type: EventType.RUN_STARTED });
  return id as string;
}

/**
 * A fetch for HttpAgent that cuts the connection after every `every` events, `cuts` times, and
 * reconnects with Last-Event-ID to the next of `bases` (the gateway, or either runtime instance
 * directly). HttpAgent itself does not reconnect; this is how a frontend adds it. Whole events
 * only pass to the agent; the ids it saw are kept in `seen`.
 */
function cuttingFetch(bases: string[], every: number, cuts: number, seen: { ids: string[]; cuts: number; bases: string[]; cutAt: number[]; endAt: number }): HttpAgentFetchFn {
  return async (url, init) => {
    const path = new URL(String(url)).pathname;
    const headers = init?.headers as Record<string, string>;
    const enc = new TextEncoder();
    let lastId: string | undefined;
    const body = new ReadableStream<Uint8Array>({
      async start(out) {
        for (let attempt = 0; ; attempt++) {
          const base = bases[attempt % bases.length];
          seen.bases.push(base);
          const ac = new AbortController();
          const res = await fetch(base + path, { method: 'POST', headers: { ...headers, ...(lastId && { 'Last-Event-ID': lastId }) }, body: init?.body, signal: ac.signal });
          if (res.status !== 200) return out.error(new Error(`reconnect ${attempt} to ${base}: ${res.status} ${await res.text()}`));
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          const decoder = new TextDecoder();
          let buf = '';
          let passed = 0;
          let cut = false;
          while (!cut) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(value, { stream: true });
            for (let i = buf.indexOf('\n\n'); i >= 0 && !cut; i = buf.indexOf('\n\n')) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              if (!/^data: /m.test(block)) continue;
              lastId = /^id: (.*)$/m.exec(block)?.[1];
              seen.ids.push(lastId as string);
              out.enqueue(enc.encode(`${block}\n\n`));
              if (++passed >= every && seen.cuts < cuts) cut = true;
            }
          }
          if (!cut) {
            seen.endAt = Date.now();
            return out.close();
          }
          seen.cuts++;
          seen.cutAt.push(Date.now());
          ac.abort();
          await reader.cancel().catch(() => undefined);
        }
      },
    });
    return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
  };
}

beforeAll(async () => {
  // Two API instances behind the gateway: a reconnect may land on either. Keep-alive comments every
  // KEEP_ALIVE_MS, so that every test's streams carry some and the quiet run's test is short.
  stack = await startTwoInstanceStack('agui', SERVICE_KEY, { runtime: { SSE_KEEP_ALIVE_MS: String(KEEP_ALIVE_MS) } });
  ({ runtime, second, gw } = stack);
  [alice, bob] = await Promise.all([token('alice', { apps: [APP] }), token('bob', { apps: [APP] })]);
}, 90_000);

afterAll(() => stack?.stop());

test('a streamed run: HttpAgent assembles the agent’s reply from RUN_STARTED … RUN_FINISHED', async () => {
  const { agent, events } = agentFor('greeter', alice);
  agent.addMessage({ id: 'u1', role: 'user', content: 'I build dashboards' });
  const { newMessages } = await agent.runAgent({ runId: uid('run') });

  const types = events.map((e) => e.type);
  expect(types[0]).toBe(EventType.RUN_STARTED);
  expect(types.at(-1)).toBe(EventType.RUN_FINISHED);
  expect(types).toEqual(expect.arrayContaining([EventType.STEP_STARTED, EventType.TEXT_MESSAGE_START, EventType.TEXT_MESSAGE_CONTENT, EventType.TEXT_MESSAGE_END, EventType.STEP_FINISHED, EventType.STATE_SNAPSHOT]));
  // Streamed: the reply came in many pieces, not one.
  expect(types.filter((t) => t === EventType.TEXT_MESSAGE_CONTENT).length).toBeGreaterThan(5);
  expect(finished(events)?.outcome).toEqual({ type: 'success' });
  expect(readable(newMessages)).toEqual([{ role: 'assistant', content: 'Noted: "I build dashboards". A teammate agent can take it from here.', toolCalls: undefined }]);
  expect(agent.state).toEqual({ workflow_name: 'greeter', agent: 'host', status: 'completed' });

  // The thread goes on: the next run is a second turn of the same chat.
  agent.addMessage({ id: 'u2', role: 'user', content: 'and reports' });
  const second = await agent.runAgent({ runId: uid('run') });
  expect(readable(second.newMessages)).toEqual([{ role: 'assistant', content: 'Noted: "and reports". A teammate agent can take it from here.', toolCalls: undefined }]);
}, 30_000);

test('a quiet run: a keep-alive comment through the gateway every SSE_KEEP_ALIVE_MS, two or more in every quiet gap, and HttpAgent reads the run whole', async () => {
  // "quiet" says three words 1.2 s apart: each gap is three keep-alive intervals without an event.
  const res = await fetch(`${gw.url}${runPath('quiet')}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ threadId: uid('thread'), runId: uid('run'), state: {}, messages: [{ id: 'u1', role: 'user', content: 'take your time' }], tools: [], context: [], forwardedProps: {} }),
  });
  expect(res.status).toBe(200);
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: BaseEvent[] = [];
  // Comments seen between one text delta and the next.
  const quietGaps: number[] = [];
  let comments = 0;
  let buf = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    buf += decoder.decode(r.value, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (block.startsWith(':')) {
        comments++;
        continue;
      }
      const event = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] as string) as BaseEvent;
      if (event.type === EventType.TEXT_MESSAGE_CONTENT) {
        if (events.some((e) => e.type === EventType.TEXT_MESSAGE_CONTENT)) quietGaps.push(comments);
        comments = 0;
      }
      events.push(event);
    }
  }
  expect(events.filter((e) => e.type === EventType.TEXT_MESSAGE_CONTENT).map((e) => (e as TextMessageContentEvent).delta)).toEqual(['Let ', 'me ', 'think.']);
  expect(finished(events)?.outcome).toEqual({ type: 'success' });
  expect(quietGaps).toHaveLength(2);
  for (const n of quietGaps) expect(n).toBeGreaterThanOrEqual(2);

  // The official client skips the comments and assembles the same reply.
  const { agent } = agentFor('quiet', alice);
  agent.addMessage({ id: 'u1', role: 'user', content: 'take your time' });
  const { newMessages } = await agent.runAgent({ runId: uid('run') });
  expect(readable(newMessages)).toEqual([{ role: 'assistant', content: 'Let me think.', toolCalls: undefined }]);
}, 30_000);

test('a UI tool awaiting an answer is an interrupt; the next run’s resume answers it', async () => {
  const { agent, events } = agentFor('ask_user', alice);
  agent.addMessage({ id: 'u1', role: 'user', content: 'Help me plan a trip' });
  const first = await agent.runAgent({ runId: uid('run') });
  const outcome = finished(events)?.outcome;
  expect(outcome?.type).toBe('interrupt');
  const interrupt = outcome?.type === 'interrupt' ? outcome.interrupts[0] : undefined;
  expect(interrupt).toMatchObject({ reason: 'tool_call', message: 'What name should I call you?', metadata: { tool_name: 'ask_user' } });
  expect(agent.pendingInterrupts.map((i) => i.id)).toEqual([interrupt?.id]);
  const call = first.newMessages.flatMap((m) => ('toolCalls' in m ? (m.toolCalls ?? []) : []))[0];
  expect(call).toMatchObject({ id: interrupt?.toolCallId, function: { name: 'ask_user', arguments: JSON.stringify({ question: 'What name should I call you?' }) } });

  events.length = 0;
  const resumed = await agent.runAgent({ runId: uid('run'), resume: [{ interruptId: interrupt?.id as string, status: 'resolved', payload: { answer: 'Ada' } }] });
  expect(finished(events)?.outcome).toEqual({ type: 'success' });
  expect(agent.pendingInterrupts).toEqual([]);
  const read = readable(resumed.newMessages);
  expect(read).toContainEqual({ role: 'tool', content: JSON.stringify({ answer: 'Ada' }), toolCalls: undefined });
  expect(read.at(-1)).toEqual({ role: 'assistant', content: 'Nice to meet you, Ada! I will remember that for the rest of our chat.', toolCalls: undefined });
  // The tool's result sits right after the call it answers.
  const all = agent.messages;
  const at = all.findIndex((m) => 'toolCalls' in m && m.toolCalls?.some((t) => t.id === interrupt?.toolCallId));
  expect(all[at + 1]).toMatchObject({ role: 'tool', toolCallId: interrupt?.toolCallId });
}, 30_000);

test('a stop: the run finishes with the cancelled outcome, mid-reply (the stream is not buffered by the gateway)', async () => {
  const threadId = uid('thread');
  const { agent, events } = agentFor('long', alice, threadId);
  agent.addMessage({ id: 'u1', role: 'user', content: 'tell me a story' });
  let stopped: Promise<unknown> | undefined;
  const run = agent.runAgent({ runId: uid('run') }, {
    onTextMessageContentEvent: () => {
      stopped ??= call(gw.url, 'POST', `${runPath('long')}/stop`, { token: alice, body: { threadId } });
    },
  });
  await run;
  expect(((await stopped) as { status: number }).status).toBe(202);
  expect(finished(events)?.outcome).toEqual({ type: 'cancelled' });
  const text = agent.messages.filter((m) => m.role === 'assistant').map((m) => m.content ?? '').join('');
  expect(text.length).toBeGreaterThan(0);
  expect(text).not.toContain('The end.');
  // Another user cannot stop it (nor learn that it exists).
  expect((await call(gw.url, 'POST', `${runPath('long')}/stop`, { token: bob, body: { threadId } })).status).toBe(404);
}, 30_000);

test('a message sent while a run streams waits its turn (enqueue), and each run carries only its own turn: the first its handoff, the second the specialist’s answer alone', async () => {
  const threadId = uid('thread');
  const { agent, events } = agentFor('slow_handoff', alice, threadId);
  const first = { id: 'u1', role: 'user' as const, content: 'my invoice is wrong' };
  agent.addMessage(first);
  let second: ReturnType<typeof rawRun> | undefined;
  const body = { threadId, runId: uid('run'), state: {}, tools: [], context: [], forwardedProps: {}, messages: [first, { id: 'u2', role: 'user', content: 'and my refund' }] };
  await agent.runAgent({ runId: uid('run') }, {
    // Sent while the first run's reply streams, before its handoff.
    onTextMessageContentEvent: () => {
      second ??= rawRun(gw.url, 'slow_handoff', alice, body);
    },
  });
  expect(finished(events)?.outcome).toEqual({ type: 'success' });
  // Its handoff (a CUSTOM event) came after the second message was sent.
  expect(events.filter((e) => e.type === EventType.CUSTOM).map((e) => (e as CustomEvent).name)).toEqual(['handoff']);
  const next = await second!;
  expect(next.status).toBe(200);
  const types = next.events.map((e) => e.event.type);
  expect([types[0], types.at(-1)]).toEqual([EventType.RUN_STARTED, EventType.RUN_FINISHED]);
  expect(types).not.toContain(EventType.CUSTOM);
  const text = next.events.flatMap((e) => (e.event.type === EventType.TEXT_MESSAGE_CONTENT ? [(e.event as TextMessageContentEvent).delta] : [])).join('');
  expect(text).toBe('Billing specialist here. About "and my refund": nothing is due.');
}, 30_000);

test('a run posted again without Last-Event-ID, to the other instance: the same run again, whole (found by its input: no run record)', async () => {
  const runId = uid('run');
  const body = { threadId: uid('thread'), runId, state: {}, tools: [], context: [], forwardedProps: {}, messages: [{ id: 'u1', role: 'user', content: 'I build dashboards' }] };
  const first = await rawRun(runtime.url, 'assistant', alice, body);
  expect(first.events.at(-1)?.event.type).toBe(EventType.RUN_FINISHED);
  const again = await rawRun(second.url, 'assistant', alice, body);
  expect(again.events).toEqual(first.events);
}, 30_000);

test('a run waiting its turn, cut after its RUN_STARTED and posted again with that Last-Event-ID to the other instance: the rest of its own turn, RUN_STARTED not again', async () => {
  const threadId = uid('thread');
  const { agent } = agentFor('slow_handoff', alice, threadId);
  const first = { id: 'u1', role: 'user' as const, content: 'my invoice is wrong' };
  agent.addMessage(first);
  const body = { threadId, runId: uid('run'), state: {}, tools: [], context: [], forwardedProps: {}, messages: [first, { id: 'u2', role: 'user', content: 'and my refund' }] };
  let cut: Promise<string> | undefined;
  await agent.runAgent({ runId: uid('run') }, {
    onTextMessageContentEvent: () => {
      cut ??= firstEventId(runtime.url, 'slow_handoff', alice, body);
    },
  });
  const started = await cut!;
  const rest = await rawRun(second.url, 'slow_handoff', alice, body, started);
  expect(rest.status).toBe(200);
  const types = rest.events.map((e) => e.event.type);
  expect(types).not.toContain(EventType.RUN_STARTED);
  expect(types).not.toContain(EventType.CUSTOM);
  expect(types.at(-1)).toBe(EventType.RUN_FINISHED);
  const text = rest.events.flatMap((e) => (e.event.type === EventType.TEXT_MESSAGE_CONTENT ? [(e.event as TextMessageContentEvent).delta] : [])).join('');
  expect(text).toBe('Billing specialist here. About "and my refund": nothing is due.');
  // A run id this thread never had is a 404 on reconnect, and starts nothing.
  const none = await rawRun(second.url, 'slow_handoff', alice, { ...body, runId: uid('run') }, started);
  expect(none.status).toBe(404);
}, 30_000);

test('a connection cut 20 times mid-run, reconnecting with Last-Event-ID to either instance: the same messages as an undisturbed run, no event twice or missing', async () => {
  const input = (id: string) => ({ id, role: 'user' as const, content: 'tell me a story' });
  // Undisturbed.
  const calm = agentFor('long', alice);
  calm.agent.addMessage(input('u1'));
  await calm.agent.runAgent({ runId: uid('run') });

  const seen = { ids: [] as string[], cuts: 0, bases: [] as string[], cutAt: [] as number[], endAt: 0 };
  const threadId = uid('thread');
  const runId = uid('run');
  const cut = agentFor('long', alice, threadId, cuttingFetch([gw.url, second.url, runtime.url], 4, 20, seen));
  cut.agent.addMessage(input('u1'));
  await cut.agent.runAgent({ runId });

  expect(seen.cuts).toBe(20);
  // Mid-run: the reply takes about 2 s; the connection was first cut well before it ended.
  expect(seen.endAt - seen.cutAt[0]).toBeGreaterThan(1000);
  expect(new Set(seen.bases)).toEqual(new Set([gw.url, second.url, runtime.url]));
  expect(readable(cut.agent.messages)).toEqual(readable(calm.agent.messages));
  expect(finished(cut.events)?.outcome).toEqual({ type: 'success' });

  // Every id once, in order, and none missing: the run read again whole (same body, no Last-Event-ID) has exactly these ids.
  expect(new Set(seen.ids).size).toBe(seen.ids.length);
  const whole = await rawRun(gw.url, 'long', alice, { threadId, runId, messages: [input('u1')] });
  expect(whole.status).toBe(200);
  expect(whole.events.map((e) => e.id)).toEqual(seen.ids);
  // (How a reply is cut into pieces varies from run to run, so events are compared with this run's own.)
  expect(cut.events).toEqual(whole.events.map((e) => e.event));
  // And after any id, exactly the rest.
  const k = Math.floor(seen.ids.length / 2);
  const rest = await rawRun(second.url, 'long', alice, { threadId, runId, messages: [input('u1')] }, seen.ids[k]);
  expect(rest.events.map((e) => e.id)).toEqual(seen.ids.slice(k + 1));
}, 60_000);

test('to another user, a chat of alice’s looks like a thread that does not exist: the same 404 and message on a reconnect and on a stop', async () => {
  const started = await call(gw.url, 'POST', `/api/chats/${APP}/greeter/start`, { token: alice, body: { user_id: 'alice' } });
  const chatId = (started.json as { chat_id: string }).chat_id;
  const missing = uid('thread');
  const runId = uid('run');
  const body = (threadId: string) => ({ threadId, runId, state: {}, tools: [], context: [], forwardedProps: {}, messages: [{ id: 'u1', role: 'user', content: 'hello' }] });
  const same = (a: { status: number; text: string }, b: { status: number; text: string }) => {
    expect(a.status).toBe(404);
    expect([b.status, b.text.replace(missing, chatId)]).toEqual([a.status, a.text]);
  };
  const reconnect = (threadId: string) => rawRun(gw.url, 'greeter', bob, body(threadId), '3:0');
  const stop = async (threadId: string) => {
    const r = await call(gw.url, 'POST', `${runPath('greeter')}/stop`, { token: bob, body: { threadId } });
    return { status: r.status, text: JSON.stringify((r.json as { error: { message: string } }).error.message) };
  };
  same(await reconnect(chatId), await reconnect(missing));
  same(await stop(chatId), await stop(missing));
}, 30_000);

test('tenancy and bad input: another user’s chat id is an unused thread id to bob (his own chat, hers untouched), another app a 403, a malformed Last-Event-ID a 400 naming it', async () => {
  const threadId = uid('thread');
  const body = { threadId, runId: uid('run'), messages: [{ id: 'u1', role: 'user', content: 'hello' }] };
  const mine = await rawRun(gw.url, 'greeter', alice, body);
  expect(mine.status).toBe(200);
  expect(mine.type).toMatch(/^text\/event-stream/);
  // A chat of alice's (started the document 003 way) is a thread by its id. To bob its id is one
  // like any he never used: his run starts a chat of his own for it, and hers is untouched.
  const started = await call(gw.url, 'POST', `/api/chats/${APP}/greeter/start`, { token: alice, body: { user_id: 'alice' } });
  const chatId = (started.json as { chat_id: string }).chat_id;
  const hers = await rawRun(gw.url, 'greeter', alice, { ...body, threadId: chatId, runId: uid('run') });
  expect(hers.status).toBe(200);
  expect(hers.events[0].event).toMatchObject({ type: EventType.RUN_STARTED, threadId: chatId });
  const meta = async () => (await call(gw.url, 'GET', `/api/chats/meta/${APP}/greeter/${chatId}`, { token: alice })).json as { last_index: number };
  const before = await meta();
  const sent = { ...body, threadId: chatId, runId: uid('run'), messages: [{ id: 'u1', role: 'user', content: 'bob was here' }] };
  const [bobs, unused] = [await rawRun(gw.url, 'greeter', bob, sent), await rawRun(gw.url, 'greeter', bob, { ...sent, threadId: uid('thread') })];
  expect([bobs.status, unused.status]).toEqual([200, 200]);
  const shape = (r: typeof bobs) => r.events.map((e) => e.event.type);
  expect(shape(bobs)).toEqual(shape(unused));
  expect(bobs.events[0].event).toMatchObject({ type: EventType.RUN_STARTED, threadId: chatId });
  expect(bobs.events.at(-1)?.event.type).toBe(EventType.RUN_FINISHED);
  expect(await meta()).toEqual(before);
  // His next run on that id is his chat again; hers still answers her.
  const again = await rawRun(gw.url, 'greeter', bob, { ...sent, runId: uid('run'), messages: [...sent.messages, { id: 'u2', role: 'user', content: 'again' }] });
  expect(again.events.at(-1)?.event.type).toBe(EventType.RUN_FINISHED);
  expect(await meta()).toEqual(before);
  const otherApp = await fetch(`${gw.url}/api/agui/other-app/greeter`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(otherApp.status).toBe(403);
  const bad = await rawRun(gw.url, 'greeter', alice, body, 'not-an-id');
  expect(bad.status).toBe(400);
  expect(bad.text).toContain('Last-Event-ID');
  const noRun = await rawRun(gw.url, 'greeter', alice, { ...body, runId: uid('run') }, '3:0');
  expect(noRun.status).toBe(404);
  // Text the database cannot store is refused by name, not a 5xx.
  const nul = await rawRun(gw.url, 'greeter', alice, { ...body, runId: uid('run'), messages: [{ id: 'u1', role: 'user', content: 'a\u0000b' }] });
  expect(nul.status).toBe(400);
  expect(nul.text).toContain('messages.0.content');
  const badAnswer = await rawRun(gw.url, 'greeter', alice, { ...body, runId: uid('run'), resume: [{ interruptId: 'x\u0000', status: 'resolved', payload: { answer: 'a\u0000' } }] });
  expect(badAnswer.status).toBe(400);
  expect(badAnswer.text).toContain('resume.0');
  const invalid = await rawRun(gw.url, 'greeter', alice, { threadId, messages: 'hi' });
  expect(invalid.status).toBe(400);
  expect(invalid.text).toMatch(/runId|messages/);
}, 30_000);
