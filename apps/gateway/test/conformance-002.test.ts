/**
 * Document 002 (Mission Ally) conformance, through the gateway: clients written from the document
 * alone, run unchanged. `fixtures/mission-ally-002/` holds the document's own code, verbatim:
 * Example 1's `MissionAllyClient` class and Example 2's React hook with its component. They run
 * against the gateway (a child process, started as `npm start` starts it) in front of the runtime
 * and its turn worker (child processes), real Redis and PostgreSQL. Nothing of the client is
 * adapted: the document's URL (`ws://localhost:8080/...?mission_id=…&token=…`, the token as the
 * document passes it) is dialled at this test's gateway by the socket class the code is given
 * (as a dev proxy would), which also records the frames it delivers, so that what the client
 * did not display (pong) can be checked too. Example 2 renders with the real React and react-dom
 * into a jsdom document; its bubbles are the `.messages` children with class `user` or `agent`.
 * The walk: connect, `connected`, `historical_messages` (empty, then on every reconnect the
 * bubbles shown live), `agent_processing_start`/`agent_message`/`agent_processing_end`,
 * `checkpoint_update`, ping/pong past two heartbeats, `error` for a bad message, and the close
 * codes: 1000 on completion (`session_closed` first), 1008 refused, 1011 a server error.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JSDOM, type DOMWindow } from 'jsdom';
import pg from 'pg';
import WebSocketImpl from 'ws';
import { pgConnectionString } from '@tessera/kit';
import { call } from '@tessera/kit/testing';
import { documentCode, FIXTURES, lineConsole, socketsTo, type DocumentSocket } from './document-code';
import { SECRET, token } from './support';
import { spawnGateway, startRuntime, type HttpService, type RuntimeStack } from './stack';

const SERVICE_KEY = 'conformance-002-service-key-0123456789';
/** The runtime's socket heartbeat (WS_HEARTBEAT_MS): idle sockets are held past two of them. */
const HEARTBEAT_MS = 300;

let runtime: RuntimeStack;
let gateway: HttpService;
let missionId: string;
let longMissionId: string;

/**
 * The WebSocket the document's code is given (document-code.ts): it dials the document's
 * localhost:8080 at this test's gateway and records every frame it delivers.
 */
const { WebSocket: Transport, made: sockets } = socketsTo(() => gateway.port);
type Transport = DocumentSocket;

async function until<T>(what: string, read: () => T, ms = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const operator = () => token('ops', { roles: ['operator'] });
async function createMission(body: Record<string, unknown>): Promise<string> {
  const r = await call(runtime.url, 'POST', '/api/v1/mission-ally/missions', { token: await operator(), body: { app_id: 'demo-app', ...body } });
  expect(r.status).toBe(201);
  return (r.json as { id: string }).id;
}
async function enroll(mission: string, user: string) {
  // The operator API is the runtime's; the gateway does not route /api/v1/mission-ally/missions.
  const r = await call(runtime.url, 'POST', `/api/v1/mission-ally/missions/${mission}/enrollments`, { token: await operator(), body: { user_id: user } });
  expect(r.status).toBe(201);
}

beforeAll(async () => {
  runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY, extra: { WS_HEARTBEAT_MS: String(HEARTBEAT_MS) } });
  gateway = await spawnGateway({ RUNTIME_URL: runtime.url, SHUTDOWN_TIMEOUT_MS: '3000' });
  const checkpoints = [
    { id: 'checkpoint_1', title: 'Install the tools', keyword: 'installed' },
    { id: 'checkpoint_2', title: 'Run a workflow', keyword: 'ran it' },
  ];
  missionId = await createMission({ title: 'Ship a workflow', checkpoints });
  // A tutor that answers slowly, in ten sentences (fixtures/workflows/long): a reload mid-reply.
  longMissionId = await createMission({ title: 'Listen to a story', workflow_name: 'long', checkpoints });
}, 90_000);
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await gateway?.stop();
  await runtime?.stop();
});

test('the fixtures are the document’s code, verbatim (checked where the document is at hand)', () => {
  const dir = process.env.SPEC_DIR ?? '/work/shared/spec';
  const spec = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith('002_')) : undefined;
  const fixtures = ['example-1-client.js', 'example-2-hook.jsx'].map((f) => readFileSync(join(FIXTURES, f), 'utf8'));
  expect(fixtures[0]).toMatch(/^class MissionAllyClient \{/);
  expect(fixtures[1]).toMatch(/^import \{ useState, useEffect, useRef \} from 'react';\n\nfunction useMissionAlly\(missionId, token\)/);
  if (!spec) return;
  const text = readFileSync(join(dir, spec), 'utf8');
  for (const f of fixtures) expect(text.includes(f)).toBe(true);
});

describe("Example 1: the document's MissionAllyClient", () => {
  type Client = { ws: Transport; connect(): void; sendMessage(text: string): void };
  const newClient = (lines: ReturnType<typeof lineConsole>) => {
    const { MissionAllyClient } = documentCode<{ MissionAllyClient: new (missionId: string, token: string) => Client }>('example-1-client.js', ['MissionAllyClient'], {
      WebSocket: Transport,
      console: lines.console,
    });
    return MissionAllyClient;
  };
  const waitLine = (l: ReturnType<typeof lineConsole>, line: string, from = 0) => until(`"${line}" in ${JSON.stringify(l.lines)}`, () => l.lines.slice(from).some((x) => x.startsWith(line)));
  const count = (l: ReturnType<typeof lineConsole>, line: string) => l.lines.filter((x) => x === line).length;
  const bubbles = (l: string[]) => l.filter((x) => x.startsWith('User: ') || x.startsWith('Agent: '));

  test('a whole mission: connected, history, a streamed reply, ping/pong past two heartbeats, error, checkpoint_update, the history again on reconnect, completion and close 1000', async () => {
    await enroll(missionId, 'ex1-learner');
    const tok = await token('ex1-learner');
    const live = lineConsole();
    const MissionAllyClient = newClient(live);
    const client = new MissionAllyClient(missionId, tok);
    client.connect();
    await waitLine(live, 'Loading 0 historical messages');
    expect(live.lines).toEqual(['Connected to Mission Ally', 'Connected: Connected to Mission Ally: Ship a workflow. Ready to start learning!', 'Loading 0 historical messages']);

    client.sendMessage("Hello, I'm ready to start!");
    await until('the first reply', () => count(live, 'Agent finished typing') === 1);
    // Streamed: one agent_message per sentence, between agent_processing_start and _end.
    expect(client.ws.frames.slice(2).map((f) => f.type)).toEqual(['agent_processing_start', 'agent_message', 'agent_message', 'agent_message', 'agent_message', 'agent_processing_end']);

    // Idle past two heartbeats, then the document's keepalive: pong, and the socket open.
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS + 200));
    expect(client.ws.readyState).toBe(WebSocketImpl.OPEN);
    client.ws.send(JSON.stringify({ type: 'ping' }));
    await until('pong', () => client.ws.frames.some((f) => f.type === 'pong'));

    // The document's invalid message: an error, and the conversation goes on.
    client.ws.send(JSON.stringify({ type: 'user_message' }));
    await waitLine(live, 'ERROR Error: Invalid message format');

    client.sendMessage('I have installed everything');
    await waitLine(live, 'Progress: 50%');
    await until('the second reply', () => count(live, 'Agent finished typing') === 2);
    expect(client.ws.frames.find((f) => f.type === 'checkpoint_update')).toEqual({ type: 'checkpoint_update', completed_checkpoints: ['checkpoint_1'], progress: 50 });
    client.ws.close();
    await waitLine(live, 'Connection closed');

    // Reconnect: the history displays what was displayed live, bubble for bubble.
    const shown = bubbles(live.lines);
    expect(shown).toHaveLength(2 + 4 + 3);
    const again = lineConsole();
    const second = new (newClient(again))(missionId, tok);
    second.connect();
    await waitLine(again, 'Loading');
    expect(again.lines[2]).toBe(`Loading ${shown.length} historical messages`);
    expect(bubbles(again.lines)).toEqual(shown);

    second.sendMessage('And I ran it, it answered me');
    await waitLine(again, 'Connection closed');
    expect(again.lines.slice(-6)).toEqual([
      'Progress: 100% checkpoint_1,checkpoint_2',
      'Agent: Well done: "Run a workflow" is complete.',
      'Agent: You are 100% through the mission.',
      'Agent finished typing',
      "Mission completed: Congratulations! You've completed the mission!",
      'Connection closed 1000 mission completed',
    ]);
    expect(second.ws.frames.slice(-2).map((f) => f.type)).toEqual(['agent_processing_end', 'session_closed']);

    // A completed mission: refused with 1008.
    const after = lineConsole();
    new (newClient(after))(missionId, tok).connect();
    await waitLine(after, 'Connection closed');
    expect(after.lines.slice(-2)).toEqual(['ERROR Error: This mission is already completed', expect.stringMatching(/^Connection closed 1008/)]);
  });

  test.each([
    ['a bad token', 'not-a-token', () => missionId, /^Authentication failed/],
    ['an unknown mission', null, () => 'p3BpROIATqthZT3ckEzd', /^Mission not found$/],
    ['a learner not enrolled', null, () => missionId, /^You are not enrolled in this mission$/],
  ])('%s: error, then close 1008', async (_name, badToken, mission, message) => {
    const l = lineConsole();
    new (newClient(l))(mission(), badToken ?? (await token('stranger'))).connect();
    await waitLine(l, 'Connection closed');
    expect(l.lines).toEqual(['Connected to Mission Ally', expect.stringMatching(/^ERROR Error: /), expect.stringMatching(/^Connection closed 1008 /)]);
    expect(l.lines[1].slice('ERROR Error: '.length)).toMatch(message);
  });

  test('a server error while the session opens: error, then close 1011', async () => {
    await enroll(missionId, 'ex1-unlucky');
    // The runtime's database loses the conversation log for a moment (this test's own schema).
    const db = new pg.Client({ connectionString: pgConnectionString(runtime.databaseUrl) });
    await db.connect();
    await db.query(`ALTER TABLE "${runtime.schema}".chat_events RENAME TO chat_events_away`);
    const l = lineConsole();
    try {
      new (newClient(l))(missionId, await token('ex1-unlucky')).connect();
      await waitLine(l, 'Connection closed');
    } finally {
      await db.query(`ALTER TABLE "${runtime.schema}".chat_events_away RENAME TO chat_events`);
      await db.end();
    }
    expect(l.lines).toEqual(['Connected to Mission Ally', 'ERROR Error: Internal error; try again', expect.stringMatching(/^Connection closed 1011 /)]);
    // Once the server is well again, the same learner connects.
    const retry = lineConsole();
    new (newClient(retry))(missionId, await token('ex1-unlucky')).connect();
    await waitLine(retry, 'Loading 0 historical messages');
  });
});

describe("Example 2: the document's React hook and component", () => {
  let React: typeof import('react');
  let createRoot: typeof import('react-dom/client').createRoot;
  let MissionAllyChat: (props: { missionId: string; token: string }) => unknown;
  let window: DOMWindow;
  const globals = ['window', 'document', 'navigator'] as const;
  const saved = new Map<string, PropertyDescriptor | undefined>();

  beforeAll(async () => {
    // A browser document for react-dom, set before react-dom is loaded (it looks for one then).
    window = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://localhost:8080/' }).window;
    for (const g of globals) {
      saved.set(g, Object.getOwnPropertyDescriptor(globalThis, g));
      Object.defineProperty(globalThis, g, { value: g === 'window' ? window : window[g], configurable: true, writable: true });
    }
    React = await import('react');
    ({ createRoot } = await import('react-dom/client'));
    ({ MissionAllyChat } = documentCode<{ MissionAllyChat: typeof MissionAllyChat }>('example-2-hook.jsx', ['useMissionAlly', 'MissionAllyChat'], { WebSocket: Transport, console: lineConsole().console }));
  });
  afterAll(async () => {
    // The pages' sockets finish closing first: the hook's onclose still sets state.
    await until('the pages’ sockets closed', () => sockets.every((t) => t.readyState === WebSocketImpl.CLOSED), 5_000).catch(() => undefined);
    for (const g of globals) {
      const d = saved.get(g);
      if (d) Object.defineProperty(globalThis, g, d);
      else delete (globalThis as Record<string, unknown>)[g];
    }
  });

  /** The component mounted in a page of its own; `reload` unmounts it (its cleanup closes the socket) and mounts it again. */
  function page(mission: string, tok: string) {
    const el = window.document.createElement('div');
    window.document.body.appendChild(el);
    let root = createRoot(el);
    let transport: Transport | undefined;
    const mount = async () => {
      const before = sockets.length;
      root.render(React.createElement(MissionAllyChat as React.FC<{ missionId: string; token: string }>, { missionId: mission, token: tok }));
      transport = await until('the page’s socket', () => sockets[before]);
    };
    const text = () => el.textContent ?? '';
    return {
      /** Opens the page and waits until it shows its conversation (`historical_messages` arrived), as a person would before typing. */
      async open() {
        await mount();
        await until('the conversation loaded', () => this.connected() && transport!.frames.some((f) => f.type === 'historical_messages'));
        await new Promise((r) => setTimeout(r, 0));
      },
      frames: () => transport!.frames,
      bubbles: () => [...(el.querySelector('.messages')?.children ?? [])].filter((c) => c.className === 'user' || c.className === 'agent').map((c) => `${c.className}: ${c.textContent}`),
      typing: () => text().includes('Agent is typing...'),
      connected: () => text().includes('Status: Connected'),
      progress: () => /Progress: ([\d.]+)%/.exec(text())?.[1],
      /** Types into the input and clicks Send, as a learner does. */
      async send(message: string) {
        const input = el.querySelector('input')!;
        Object.getOwnPropertyDescriptor(window.HTMLInputElement.prototype, 'value')!.set!.call(input, message);
        input.dispatchEvent(new window.Event('input', { bubbles: true }));
        await until('the input to hold the text', () => input.value === message);
        await new Promise((r) => setTimeout(r, 0));
        el.querySelector('button')!.dispatchEvent(new window.MouseEvent('click', { bubbles: true }));
      },
      async reload() {
        root.unmount();
        root = createRoot(el);
        await this.open();
      },
      close() {
        root.unmount();
        el.remove();
      },
    };
  }
  const idle = (p: ReturnType<typeof page>, agentBubbles: number) => until(`${agentBubbles} agent bubbles, not typing`, () => !p.typing() && p.bubbles().filter((b) => b.startsWith('agent')).length >= agentBubbles);

  test('the bubbles after a reload are the bubbles shown live; typing indicator and progress follow the messages', async () => {
    await enroll(missionId, 'ex2-learner');
    const p = page(missionId, await token('ex2-learner'));
    await p.open();
    expect(p.bubbles()).toEqual([]);
    await p.send('hello');
    await idle(p, 4);
    // The typing indicator was shown from agent_processing_start to agent_processing_end.
    expect(p.frames().slice(2).map((f) => f.type)).toEqual(['agent_processing_start', ...Array(4).fill('agent_message'), 'agent_processing_end']);
    const live = p.bubbles();
    expect(live).toEqual([
      'user: hello',
      'agent: Hello!',
      'agent: I am your Mission Ally for "Ship a workflow".',
      'agent: Tell me what you have done so far.',
      'agent: Say help if you are stuck.',
    ]);
    expect(p.progress()).toBe('0');

    await p.reload();
    expect(p.bubbles()).toEqual(live);

    await p.send('I have installed the tools');
    await until('Progress: 50%', () => p.progress() === '50');
    await idle(p, 7);
    const more = p.bubbles();
    await p.reload();
    expect(p.bubbles()).toEqual(more);
    p.close();
  });

  test('a reload while a reply streams: its bubbles end up those of a page open all along', async () => {
    await enroll(longMissionId, 'ex2-reader');
    const tok = await token('ex2-reader');
    const along = page(longMissionId, tok);
    await along.open();
    await along.send('a story please');
    // Some sentences shown, the reply not finished: the second tab (a reload) opens now.
    await until('three sentences of the reply', () => along.typing() && along.bubbles().length >= 4);
    const reloaded = page(longMissionId, tok);
    await reloaded.open();
    expect(reloaded.typing()).toBe(true);
    await Promise.all([idle(along, 10), idle(reloaded, 10)]);
    expect(along.bubbles()).toHaveLength(11);
    expect(along.bubbles().at(-1)).toBe('agent: The end.');
    expect(reloaded.bubbles()).toEqual(along.bubbles());
    along.close();
    reloaded.close();
  });
});
