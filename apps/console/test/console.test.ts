/**
 * The console in a real browser (Debian's Chromium through playwright-core, headless) against the
 * real stack (./stack.ts): what an operator does, checked as an operator would see it, with the
 * services' own records as the second witness. Writes a screenshot of each page to
 * apps/console/screenshots/.
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { call, TestSocket, until } from '@tessera/kit/testing';
import { duration, num, usd } from '../src/format';
import { MIN_GAP_MS, REFRESH_MS } from '../src/usage';
import { ensureConsoleBuilt } from './build';
import { CONTEXT_PLAN, OPERATOR, startStack, type Stack } from './stack';

const SHOTS = join(__dirname, '../screenshots');
const USER = 'console-operator';
const SLOW = JSON.parse(readFileSync(join(__dirname, 'fixtures/workflows/slow/workflow.json'), 'utf8')).agents[0].model.script[0].text as string;

let stack: Stack;
let browser: Browser;
let page: Page;
const sockets: TestSocket[] = [];
const pageErrors: string[] = [];
/** Services a test stops on purpose. */
const stopped = new Set<string>();

/** One observability socket of a page, as the page saw it: what it sent (as sent) and what it received (type and session), in order. */
interface LiveFeed {
  /** The socket's URL as the page opened it (the token in it is not checked here). */
  url: string;
  log: ({ sent: Record<string, unknown> } | { received: { type: string; session_id?: string } })[];
}
/** Records every observability socket a page opens (playwright's own view of the frames, not the page's counters). */
function recordLiveFeeds(p: Page): LiveFeed[] {
  const feeds: LiveFeed[] = [];
  p.on('websocket', (ws) => {
    if (!ws.url().includes('/api/observability/ws')) return;
    const feed: LiveFeed = { url: ws.url(), log: [] };
    feeds.push(feed);
    ws.on('framesent', (f) => feed.log.push({ sent: JSON.parse(String(f.payload)) }));
    ws.on('framereceived', (f) => {
      const m = JSON.parse(String(f.payload));
      feed.log.push({ received: { type: m.type, ...(m.session_id !== undefined && { session_id: m.session_id }) } });
    });
  });
  return feeds;
}
const sentOn = (feed: LiveFeed) => feed.log.flatMap((m) => ('sent' in m ? [m.sent] : []));
/** Events a socket received of sessions it had not subscribed to by then. */
function unsubscribedEvents(feed: LiveFeed): string[] {
  const subscribed = new Set<unknown>();
  const stray: string[] = [];
  for (const m of feed.log) {
    // A session once subscribed stays allowed: events already on their way when it unsubscribed still arrive.
    if ('sent' in m && m.sent.type === 'subscribe') subscribed.add(m.sent.session_id);
    if ('received' in m && m.received.type === 'event' && !subscribed.has(m.received.session_id)) stray.push(m.received.session_id!);
  }
  return stray;
}
let liveFeeds: LiveFeed[] = [];

const api = (method: string, path: string, body?: unknown) => call(stack.url, method, path, { token: stack.token, body });
const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
const nav = (label: string) => page.getByRole('navigation').getByRole('link', { name: label }).click();

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const [s, , b] = await Promise.all([
    startStack(),
    ensureConsoleBuilt(),
    chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'], headless: true }),
  ]);
  stack = s;
  browser = b;
  page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  liveFeeds = recordLiveFeeds(page);
}, 150_000);

afterAll(async () => {
  // A service that died explains the failures it caused.
  for (const p of stack?.processes ?? []) if (!stopped.has(p.name) && (p.child.exitCode !== null || p.child.signalCode !== null)) console.error(`${p.name} exited:\n${p.output()}`);
  if (process.env.CONSOLE_TEST_OUTPUT) for (const p of stack?.processes ?? []) console.error(`${p.name}:\n${p.output()}`);
  for (const s of sockets) s.ws.terminate();
  await browser?.close();
  await stack?.stop();
}, 60_000);

afterEach(() => {
  // An uncaught error in the page is a bug even when the screen looks right.
  expect(pageErrors).toEqual([]);
});

it('signs in with a token, and says why a token is refused', async () => {
  await page.goto(`${stack.url}/console/`);
  await expect(page.getByRole('heading', { name: 'Tessera console' }).isVisible()).resolves.toBe(true);
  await shot('sign-in');

  const signIn = async (token: string) => {
    await page.getByLabel('token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  await signIn('not a token');
  await page.getByText('That is not a token').waitFor();
  // A real token without the operator role: observability's refusal, in its words.
  await signIn(await stack.sign({ sub: 'someone', apps: [stack.appId] }));
  await page.getByText(/Sign-in refused: .*operator/).waitFor();

  // The whole line `npm start` prints, as copied from the terminal (indented, with its line break).
  await signIn(`  export TOKEN=${stack.token}\n`);
  // The first page is the dashboard.
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await page.getByText('● live').waitFor();
  expect(page.url()).toBe(`${stack.url}/console/dashboard`);
  // The token is the tab's (sessionStorage): kept across a reload, not in localStorage, not seen by another tab.
  expect(await page.evaluate(() => [sessionStorage.getItem('tessera.console.token'), localStorage.getItem('tessera.console.token')])).toEqual([stack.token, null]);
  await page.reload();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  // Another tab of the same browser profile: not signed in (browser.newPage's context holds one page, so a context of two).
  const context = await browser.newContext();
  try {
    const first = await context.newPage();
    await first.goto(`${stack.url}/console/`);
    await first.getByLabel('token').fill(stack.token);
    await first.getByRole('button', { name: 'Sign in' }).click();
    await first.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const second = await context.newPage();
    await second.goto(`${stack.url}/console/`);
    await second.getByLabel('token').waitFor();
    expect(await second.evaluate(() => [sessionStorage.length, localStorage.getItem('tessera.console.token')])).toEqual([0, null]);
  } finally {
    await context.close();
  }
});

it('is built without source maps: no .map file, no sourceMappingURL, none served', async () => {
  const assets = join(__dirname, '../dist/assets');
  const files = readdirSync(assets);
  expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
  const scripts = files.filter((f) => f.endsWith('.js') || f.endsWith('.css'));
  expect(scripts.length).toBeGreaterThan(0);
  for (const f of scripts) expect(readFileSync(join(assets, f), 'utf8')).not.toContain('sourceMappingURL');
  const served = await call(stack.url, 'GET', `/console/assets/${scripts.find((f) => f.endsWith('.js'))}.map`);
  expect(String(served.text ?? '')).not.toContain('"mappings"');
});

it('says why the live feed is refused when the console is opened at an address not in CORS_ORIGINS', async () => {
  // The same gateway under another origin: the stack allows its 127.0.0.1 address only (as the
  // defaults allow localhost only, and an operator opens 127.0.0.1:8080).
  const other = stack.url.replace('127.0.0.1', 'localhost');
  const context = await browser.newContext();
  try {
    const p = await context.newPage();
    p.setDefaultTimeout(20_000);
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await p.goto(`${other}/console/`);
    await p.getByLabel('token').fill(stack.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    // Reads over HTTP work (same origin); the socket's upgrade is refused for its Origin.
    await p.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await p.getByText(`most likely this address (${other}) is not in CORS_ORIGINS`, { exact: false }).waitFor();
    expect(await p.locator('.live-status').textContent()).not.toBe('● live');
  } finally {
    await context.close();
  }
});

it('shows a chat appear live, streams its reply into one message of the conversation, and stops it', async () => {
  const started = await api('POST', `/api/chats/${stack.appId}/slow/start`, { user_id: USER });
  expect({ status: started.status, body: started.json }).toMatchObject({ status: 201 });
  const chatId: string = started.json.chat_id;
  const socket = await TestSocket.connect(`${stack.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${stack.token}`);
  sockets.push(socket);
  await socket.waitFor((m) => m.type === 'chat_meta');
  socket.send({ type: 'user.input.submit', text: 'tell me a story' });

  // No reload: the row arrives over observability's socket.
  await nav('Sessions');
  const row = page.locator(`tr[data-session="${chatId}"]`);
  await row.locator('.badge.running').waitFor();
  // The chat's events are recorded while the page has not opened it: its socket is not sent them.
  await until(async () => (await api('GET', `/api/observability/sessions/${chatId}`)).json.event_count >= 2, 20_000, 'events recorded');
  await row.click();
  const detail = page.getByTestId('session-detail');
  // Titled by what the user asked.
  await detail.getByRole('heading', { name: 'tell me a story', exact: true }).waitFor();
  // The reply streams into one message of the conversation, still open, as the words arrive.
  await detail.locator('.bubble.user .text').getByText('tell me a story', { exact: true }).waitFor();
  const reply = detail.getByTestId('conversation').locator('.bubble.assistant[data-kind="message"] .text');
  const replyText = async () => ((await reply.count()) ? ((await reply.first().textContent()) ?? '') : '');
  const seen = await until(async () => (await replyText()).length > 20 && replyText(), 20_000, 'the reply to stream');
  await detail.locator('.bubble.assistant .caret').waitFor();
  // It keeps streaming while we watch: the same message grows, no new row per word.
  await until(async () => (await replyText()).length > seen.length + 20, 20_000, 'the reply to grow');
  expect(await reply.count()).toBe(1);
  expect(await replyText()).toContain(seen);
  // What the page sent on its live socket (the one opened by the first test's reload): it opened
  // narrowed (no events of sessions it does not show), then subscribed to the session it opened,
  // from its start. It received no event of the chat before it subscribed.
  const feed = liveFeeds.at(-1)!;
  expect(new URL(feed.url).searchParams.get('events')).toBe('subscribed');
  expect(sentOn(feed)).toEqual([{ type: 'subscribe', session_id: chatId, after: 0 }]);
  const subscribedAt = feed.log.findIndex((m) => 'sent' in m && m.sent.type === 'subscribe');
  expect(feed.log.slice(0, subscribedAt).filter((m) => 'received' in m && m.received.type === 'event')).toEqual([]);
  expect(feed.log.slice(subscribedAt).some((m) => 'received' in m && m.received.type === 'event' && m.received.session_id === chatId)).toBe(true);

  await detail.getByRole('button', { name: 'Stop' }).click();
  await detail.locator('.detail-head .badge.stopped').waitFor();
  // The cut reply is closed where it stopped, and the turn says it was stopped.
  await detail.locator('.bubble.assistant .caret').waitFor({ state: 'detached' });
  await detail.locator('.turn-head .badge.stopped').waitFor();
  await row.locator('.badge.stopped').waitFor();
  const s = await api('GET', `/api/observability/sessions/${chatId}`);
  expect(s.json.status).toBe('stopped');
  // The runtime aborted the turn: the reply never reached its end.
  await socket.waitFor((m) => m.type === 'chat.run_complete' || m.type === 'chat.run_stopped' || (m.type === 'chat.error' && /stop/i.test(JSON.stringify(m.data))), 15_000).catch(() => undefined);
  const texts = socket.messages.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant');
  expect(texts.at(-1)?.data.content ?? '').not.toContain('The end.');
});

it('reads a session as a conversation beside the list: a streamed reply is one message, a tool call shows its arguments and answer, raw events are a click away', async () => {
  // An outside agent's session, then more sessions than the window holds: it is far down the list.
  const ingest = async (events: Record<string, unknown>[]) => {
    const r = await call(stack.url, 'POST', '/api/observability/events', { headers: { 'x-ingest-key': stack.ingestKey }, body: { events } });
    expect({ status: r.status, accepted: r.json?.accepted }).toEqual({ status: 200, accepted: events.length });
  };
  const outside = 'console-outside-agent';
  const t = Date.now() - 60_000;
  const at = (ms: number) => new Date(t + ms).toISOString();
  await ingest([
    { event_type: 'session_start', session_id: outside, session_name: 'outside agent fixing the build', agent_name: 'claude-code', timestamp: at(0) },
    { event_type: 'message', session_id: outside, role: 'user', content: [{ type: 'text', text: 'fix the build' }], timestamp: at(100) },
    { event_type: 'pre_tool', session_id: outside, tool_name: 'Bash', tool_input: { command: 'npm test' }, timestamp: at(200) },
    { event_type: 'post_tool', session_id: outside, tool_name: 'Bash', tool_output: '3 failed', error: 'exit code 1', exit_code: 1, timestamp: at(1_400) },
    { event_type: 'message', session_id: outside, role: 'assistant', agent_name: 'claude-code', content: [{ type: 'text', text: 'Three tests fail in the parser.' }], timestamp: at(1_500) },
  ]);
  // An OpenTelemetry agent's trace (GenAI conventions): the agent span, a model call asking for a tool, the tool, the answer.
  const otel = 'console-otel-conversation';
  const ns = (ms: number) => String(BigInt(t + ms) * 1_000_000n);
  const kv = (a: Record<string, string | number>) => Object.entries(a).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } }));
  const messages = (role: string, parts: Record<string, unknown>[]) => JSON.stringify([{ role, parts }]);
  const trace = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const span = (spanId: string, parentSpanId: string | undefined, name: string, from: number, to: number, attributes: Record<string, string | number>) => ({
    traceId: trace, spanId, ...(parentSpanId && { parentSpanId }), name, kind: 1, startTimeUnixNano: ns(from), endTimeUnixNano: ns(to), attributes: kv({ 'gen_ai.conversation.id': otel, ...attributes }), status: { code: 1 },
  });
  const traced = await call(stack.url, 'POST', '/api/observability/v1/traces', {
    headers: { 'x-ingest-key': stack.ingestKey },
    body: {
      resourceSpans: [
        {
          resource: { attributes: kv({ 'service.name': 'weather-agent' }) },
          scopeSpans: [
            {
              scope: { name: 'console-test' },
              spans: [
                span('00000000000000a1', undefined, 'invoke_agent Weather', 0, 2_000, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Weather' }),
                span('00000000000000c1', '00000000000000a1', 'chat gpt-4o', 100, 900, { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 50, 'gen_ai.usage.output_tokens': 9, 'gen_ai.input.messages': messages('user', [{ type: 'text', content: 'What is the weather in Paris?' }]), 'gen_ai.output.messages': messages('assistant', [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }]) }),
                span('00000000000000e1', '00000000000000a1', 'execute_tool get_weather', 950, 1_250, { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_weather', 'gen_ai.tool.call.id': 'call_1', 'gen_ai.tool.call.arguments': JSON.stringify({ city: 'Paris' }), 'gen_ai.tool.call.result': JSON.stringify({ celsius: 21 }) }),
                span('00000000000000c2', '00000000000000a1', 'chat gpt-4o', 1_300, 1_900, { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 80, 'gen_ai.usage.output_tokens': 8, 'gen_ai.output.messages': messages('assistant', [{ type: 'text', content: 'It is 21 °C in Paris.' }]) }),
              ],
            },
          ],
        },
      ],
    },
  });
  expect({ status: traced.status, body: traced.json }).toMatchObject({ status: 200 });
  await ingest(Array.from({ length: 40 }, (_, i) => ({ event_type: 'session_start', session_id: `console-filler-${i}`, session_name: `repository task ${i + 1}`, agent_name: 'claude-code' })));

  // A runtime chat whose agent asks the user through a UI tool (fixtures: ask_name), answered, then replying.
  const started = await api('POST', `/api/chats/${stack.appId}/ask_name/start`, { user_id: USER });
  expect({ status: started.status, body: started.json }).toMatchObject({ status: 201 });
  const chatId: string = started.json.chat_id;
  const socket = await TestSocket.connect(`${stack.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${stack.token}`);
  sockets.push(socket);
  await socket.waitFor((m) => m.type === 'chat_meta');
  socket.send({ type: 'user.input.submit', text: 'I need help with my order' });
  const toolCall = await socket.waitFor((m) => m.type === 'chat.tool_call', 20_000);
  socket.send({ type: 'tool_call_response', tool_call_id: toolCall.data.tool_call_id, response: { answer: 'Ada' } });
  await socket.waitFor((m) => m.type === 'chat.run_complete' && m.data.status === 'completed', 20_000);
  const replies = socket.messages.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant' && m.data.done).map((m) => m.data.content as string);
  expect(replies).toEqual(['Happy to help with your order. Before I look it up, one quick question for you.', 'Nice to meet you, Ada! I will remember that for the rest of our chat.']);
  const recorded = await until(async () => {
    const s = (await api('GET', `/api/observability/sessions/${chatId}`)).json;
    return s.status === 'finished' && s.last_event_type === 'chat.run_complete' && s.event_count;
  }, 20_000, 'the chat recorded to its end');
  // Observability recorded each reply word by word: the first is many events.
  const stored: { event_type: string; attributes: { 'tessera.payload'?: { message_id?: string; role?: string } } }[] = (await api('GET', `/api/observability/sessions/${chatId}/events?limit=1000`)).json.events;
  expect(stored).toHaveLength(recorded);
  const firstReplyId = stored.find((e) => e.event_type === 'chat.text' && e.attributes['tessera.payload']?.role === 'assistant')!.attributes['tessera.payload']!.message_id;
  const firstReplyEvents = stored.filter((e) => e.event_type === 'chat.text' && e.attributes['tessera.payload']?.message_id === firstReplyId).length;
  expect(firstReplyEvents).toBeGreaterThan(5);

  const feed = liveFeeds.at(-1)!;
  const sentBefore = sentOn(feed).length;
  const requests: string[] = [];
  const record = (r: { url: () => string; method: () => string; resourceType: () => string }) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/') && r.resourceType() !== 'websocket') requests.push(`${r.method()} ${u.pathname}${u.search}`);
  };
  page.on('request', record);
  try {
    await nav('Sessions');
    await page.locator(`tr[data-session="console-filler-0"]`).waitFor();
    await page.locator(`tr[data-session="${chatId}"]`).click();
    const detail = page.getByTestId('session-detail');
    await detail.getByRole('heading', { name: 'I need help with my order', exact: true }).waitFor();
    const conversation = detail.getByTestId('conversation');
    const assistant = conversation.locator('.bubble.assistant[data-kind="message"] .text');
    await assistant.getByText('Nice to meet you, Ada!', { exact: false }).waitFor();

    // Beside the list, from its top: not below it.
    const list = (await page.getByTestId('sessions-table').boundingBox())!;
    const box = (await detail.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(list.x + list.width);
    expect(box.y).toBeGreaterThanOrEqual(0);
    expect(box.y).toBeLessThanOrEqual(list.y);

    // Two turns: the question (awaiting the user's answer), then the reply after it; each reply one message, whole.
    await expect(conversation.locator('.turn-head .badge').allTextContents()).resolves.toEqual(['awaiting_input', 'completed']);
    expect(await conversation.locator('.bubble.user .text').allTextContents()).toEqual(['I need help with my order']);
    expect(await assistant.allTextContents()).toEqual(replies);
    await conversation.locator('.turn').nth(1).getByText('continues after the answer to ask_user').waitFor();
    // Where each turn's time went: the model call, then (first turn) the tool awaiting the user.
    await expect(conversation.locator('.turn').nth(0).locator('[data-bar]').evaluateAll((bars) => bars.map((b) => b.getAttribute('data-bar')))).resolves.toEqual(['model', 'tool']);
    await expect(conversation.locator('.turn').nth(1).locator('[data-bar]').evaluateAll((bars) => bars.map((b) => b.getAttribute('data-bar')))).resolves.toEqual(['model']);

    // The tool call: a card that opens to its arguments and the user's answer.
    const tool = conversation.locator('[data-kind="tool"]');
    expect(await tool.count()).toBe(1);
    await expect(tool.locator(':scope > summary').textContent()).resolves.toMatch(/^ask_user answered in \d/);
    await tool.locator(':scope > summary').click();
    const sections = tool.locator('.tool-section pre');
    expect(JSON.parse((await sections.nth(0).textContent())!)).toEqual(toolCall.data.payload);
    expect(toolCall.data.payload).toEqual({ question: 'What name should I call you?' });
    expect(JSON.parse((await sections.nth(1).textContent())!)).toEqual({ answer: 'Ada' });
    await shot('sessions');

    // A message opens to the events it stands for: every streamed piece, as stored.
    const first = conversation.locator('.bubble.assistant[data-kind="message"]').first();
    await first.locator('.fields summary').click();
    // (The fields render once the details element says it opened.)
    await first.locator('.fields pre[data-seq]').first().waitFor();
    await expect(first.locator('.fields pre[data-seq]').count()).resolves.toBe(firstReplyEvents);
    expect(JSON.parse((await first.locator('.fields pre[data-seq]').last().textContent())!)).toMatchObject({ session_id: chatId, event_type: 'chat.text', attributes: { 'tessera.payload': { done: true, content: replies[0] } } });

    // The raw events, one click away: one row per stored event.
    await detail.getByRole('tab', { name: 'Raw events' }).click();
    await until(async () => (await detail.getByTestId('timeline').locator('li[data-seq]').count()) === recorded, 10_000, 'every event listed');
    expect(await conversation.count()).toBe(0);
    await detail.getByRole('tab', { name: 'Conversation' }).click();
    await conversation.waitFor();

    // A session far down a long list opens beside it too, in view: an outside agent's, read the same way.
    const row = page.locator(`tr[data-session="${outside}"]`);
    await row.scrollIntoViewIfNeeded();
    expect(await page.evaluate(() => window.scrollY)).toBeGreaterThan(400);
    await row.click();
    await detail.getByRole('heading', { name: 'outside agent fixing the build' }).waitFor();
    const far = (await detail.boundingBox())!;
    expect(far.y).toBeGreaterThanOrEqual(0);
    expect(far.y).toBeLessThan(100);
    await assistant.getByText('Three tests fail in the parser.').waitFor();
    await expect(conversation.locator('.bubble.user .text').allTextContents()).resolves.toEqual(['fix the build']);
    await expect(assistant.allTextContents()).resolves.toEqual(['Three tests fail in the parser.']);
    const bash = conversation.locator('[data-kind="tool"]');
    await expect(bash.locator(':scope > summary').textContent()).resolves.toBe('Bash failed in 1.2 s');
    await bash.locator(':scope > summary').click();
    expect(JSON.parse((await bash.locator('.tool-section pre').nth(0).textContent())!)).toEqual({ command: 'npm test' });
    await expect(bash.locator('.tool-section pre').nth(1).textContent()).resolves.toBe('3 failed');
    await bash.locator('.conv-error').getByText('exit code 1').waitFor();
    // An OpenTelemetry trace reads as a turn too: the prompt from the model call's input, the agent span above its calls, the answer.
    await page.locator(`tr[data-session="${otel}"]`).click();
    // Titled by the user's question in the model call's input, not by the agent's span.
    await detail.getByRole('heading', { name: 'What is the weather in Paris?', exact: true }).waitFor();
    await conversation.locator('[data-kind="model-output"] .text').getByText('It is 21 °C in Paris.').waitFor();
    await expect(conversation.locator('[data-kind="prompt"] .text').allTextContents()).resolves.toEqual(['What is the weather in Paris?']);
    await expect(conversation.locator('.turn-head .badge').allTextContents()).resolves.toEqual(['completed']);
    await expect(conversation.locator('[data-bar]').evaluateAll((bars) => bars.map((b) => b.getAttribute('data-bar')))).resolves.toEqual(['model', 'tool', 'model']);
    const weather = conversation.locator('[data-kind="tool"]');
    await expect(weather.locator(':scope > summary').textContent()).resolves.toBe('get_weather answered in 300 ms');
    await weather.locator(':scope > summary').click();
    expect(JSON.parse((await weather.locator('.tool-section pre').nth(0).textContent())!)).toEqual({ city: 'Paris' });
    expect(JSON.parse((await weather.locator('.tool-section pre').nth(1).textContent())!)).toEqual({ celsius: 21 });
    // The calls sit under the agent span in the trace's tree.
    const indent = (kind: string) => conversation.locator(`[data-kind="${kind}"]`).first().evaluate((el) => parseFloat(getComputedStyle(el).marginLeft));
    expect(await indent('tool')).toBeGreaterThan(await indent('event'));

    // The failed tool is the session's, not the page's: the page shows no error of its own.
    expect(await page.locator('.error').count()).toBe(0);
  } finally {
    page.off('request', record);
  }
  // What the page sent: nothing over HTTP (the new sessions and every event came on its live socket), and each opened session's events asked for once, from its start.
  expect(requests).toEqual([]);
  expect(sentOn(feed).slice(sentBefore).filter((m) => m.type === 'subscribe')).toEqual([
    { type: 'subscribe', session_id: chatId, after: 0 },
    { type: 'subscribe', session_id: outside, after: 0 },
    { type: 'subscribe', session_id: otel, after: 0 },
  ]);
});

it('shows a handoff between the agents of a turn, each agent’s message under its name', async () => {
  // The repository's handoff workflow: triage hands a billing question to the specialist within the turn.
  const started = await api('POST', `/api/chats/${stack.appId}/handoff/start`, { user_id: USER });
  expect({ status: started.status, body: started.json }).toMatchObject({ status: 201 });
  const chatId: string = started.json.chat_id;
  const socket = await TestSocket.connect(`${stack.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${stack.token}`);
  sockets.push(socket);
  await socket.waitFor((m) => m.type === 'chat_meta');
  socket.send({ type: 'user.input.submit', text: 'a question about my invoice' });
  await socket.waitFor((m) => m.type === 'chat.run_complete', 20_000);
  const said = socket.messages.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant' && m.data.done).map((m) => [m.data.agent, m.data.content]);
  expect(said.map(([agent]) => agent)).toEqual(['triage', 'specialist']);

  await page.locator(`tr[data-session="${chatId}"]`).click();
  const conversation = page.getByTestId('session-detail').getByTestId('conversation');
  await conversation.locator('[data-kind="handoff"]').getByText('handed off from triage to specialist').waitFor();
  const messages = conversation.locator('.bubble.assistant[data-kind="message"]');
  await until(async () => (await messages.count()) === 2, 10_000, 'both agents’ messages');
  expect(await messages.evaluateAll((els) => els.map((el) => [el.querySelector('.who')?.textContent, el.querySelector('.text')?.textContent]))).toEqual(said);
  // In the order they happened: triage's message, its model call, the handoff, the specialist's message, its model call, the end.
  await expect(conversation.locator('[data-kind]').evaluateAll((els) => els.map((el) => el.getAttribute('data-kind')))).resolves.toEqual(['message', 'message', 'model', 'handoff', 'message', 'model', 'event', 'end']);
});

it('creates, edits (prompt in the editor) and deletes an agent', async () => {
  await nav('Agents');
  await page.getByRole('button', { name: 'New agent' }).click();
  await page.getByLabel('Name').fill('console-reviewer');
  await page.getByLabel('Description').fill('Reviews code');
  await page.locator('.cm-content').click();
  await page.keyboard.type('You review code.');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByText('Agent “console-reviewer” saved.').waitFor();
  const row = page.locator('tr[data-agent="console-reviewer"]');
  await row.waitFor();
  expect((await api('GET', '/api/agents/console-reviewer')).json).toMatchObject({ description: 'Reviews code', system_prompt: 'You review code.', status: 'active' });

  // A refusal is shown in the service's words.
  await page.getByRole('button', { name: 'New agent' }).click();
  await page.getByLabel('Name').fill('bad name!');
  await page.getByLabel('Description').fill('x');
  await page.locator('.cm-content').click();
  await page.keyboard.type('x');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByText(/Could not save: .*name/).waitFor();
  await page.getByRole('button', { name: 'Cancel' }).click();

  await row.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit console-reviewer' }).waitFor();
  await page.locator('.cm-content').click();
  await page.keyboard.press('End');
  await page.keyboard.type(' Be kind.');
  await shot('agents');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Agent “console-reviewer” saved.').waitFor();
  expect((await api('GET', '/api/agents/console-reviewer')).json.system_prompt).toBe('You review code. Be kind.');

  await row.getByRole('button', { name: 'Deactivate' }).click();
  await row.locator('.badge.inactive').waitFor();
  await row.getByRole('button', { name: 'Activate' }).click();
  await row.locator('.badge.active').waitFor();

  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'Confirm delete' }).click();
  await page.getByText('Agent “console-reviewer” deleted.').waitFor();
  await row.waitFor({ state: 'detached' });
  expect((await api('GET', '/api/agents/console-reviewer')).status).toBe(404);
});

it('explains an agent that open chats use (the 409, naming the chat), and deactivates and deletes it anyway', async () => {
  // Workflow "blueprinted" (fixtures) runs its agent on blueprint "console-helper".
  expect((await api('POST', '/api/agents', { name: 'console-helper', description: 'Helps', system_prompt: 'You help.' })).status).toBe(201);
  const open = async () => {
    const started = await api('POST', `/api/chats/${stack.appId}/blueprinted/start`, { user_id: USER });
    expect({ status: started.status, body: started.json }).toMatchObject({ status: 201 });
    const socket = await TestSocket.connect(`${stack.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${stack.token}`);
    sockets.push(socket);
    await socket.waitFor((m) => m.type === 'chat_meta');
    /** The user's next message, and how its turn ended: the reply, or the error the chat shows. */
    const turn = async (text: string) => {
      const from = socket.messages.length;
      socket.send({ type: 'user.input.submit', text });
      const end = await socket.waitFor((m) => m.type === 'chat.run_complete', 20_000, from);
      const after = socket.messages.slice(from);
      return {
        status: end.data.status,
        reply: after.findLast((m) => m.type === 'chat.text' && m.data.role === 'assistant')?.data.content,
        error: after.find((m) => m.type === 'chat.error')?.data.error_code,
      };
    };
    return { chatId: started.json.chat_id as string, turn };
  };
  const first = await open();
  expect(await first.turn('first')).toMatchObject({ status: 'completed', reply: 'Done: first' });

  await page.reload();
  const row = page.locator('tr[data-agent="console-helper"]');
  const inUse = page.locator('.in-use');
  const explained = async (action: 'deleted' | 'deactivated', chatId: string, status: string) => {
    await inUse.getByText(`“console-helper” cannot be ${action}: 1 running session uses it.`).waitFor();
    await expect(inUse.locator('li').allTextContents()).resolves.toEqual([`${chatId} (runtime, workflow blueprinted, app ${stack.appId}, ${status})`]);
    // The agent manager's own words name the chat too.
    await inUse.getByText(`${chatId} (chat of workflow "blueprinted")`, { exact: false }).waitFor();
  };

  await row.getByRole('button', { name: 'Deactivate' }).click();
  await explained('deactivated', first.chatId, 'in_progress');
  await shot('agents-in-use');
  // Refused: nothing changed, and the chat goes on.
  expect((await api('GET', '/api/agents/console-helper')).json.status).toBe('active');
  await row.locator('.badge.active').waitFor();
  expect(await first.turn('still there?')).toMatchObject({ status: 'completed', reply: 'Done: still there?' });
  await inUse.getByRole('button', { name: 'Cancel' }).click();
  await inUse.waitFor({ state: 'detached' });

  await row.getByRole('button', { name: 'Deactivate' }).click();
  await inUse.getByRole('button', { name: 'Deactivate anyway' }).click();
  await page.getByText('Agent “console-helper” deactivated.').waitFor();
  await row.locator('.badge.inactive').waitFor();
  await inUse.waitFor({ state: 'detached' });
  expect((await api('GET', '/api/agents/console-helper')).json.status).toBe('inactive');
  // What the page warned of: the chat's next turn fails (and the failed chat no longer counts as open).
  expect(await first.turn('and now?')).toMatchObject({ status: 'failed', error: 'BLUEPRINT_INACTIVE' });

  // A new chat of the workflow is open before its first message: it holds the agent too.
  const second = await open();
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.getByRole('button', { name: 'Confirm delete' }).click();
  await explained('deleted', second.chatId, 'created');
  expect((await api('GET', '/api/agents/console-helper')).status).toBe(200);
  await inUse.getByRole('button', { name: 'Delete anyway' }).click();
  await page.getByText('Agent “console-helper” deleted.').waitFor();
  await row.waitFor({ state: 'detached' });
  expect((await api('GET', '/api/agents/console-helper')).status).toBe(404);
  expect(await second.turn('hello?')).toMatchObject({ status: 'failed', error: 'BLUEPRINT_NOT_FOUND' });
});

it('uploads documents (file input and drag and drop) and filters them by tag', async () => {
  await nav('Documents');
  await page.getByLabel('tags for new uploads').fill('console-e2e, notes');
  await page.getByLabel('description for new uploads').fill('Meeting notes');
  await page.getByTestId('file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('notes of the meeting\n'.repeat(2000)) });
  await page.locator('[data-upload="notes.txt"]').getByText('done').waitFor();
  await page.locator('tr[data-document="notes.txt"]').waitFor();

  await page.getByLabel('tags for new uploads').fill('');
  await page.getByLabel('description for new uploads').fill('');
  const dropped = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(['other bytes'], 'other.txt', { type: 'text/plain' }));
    return dt;
  });
  await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer: dropped });
  await page.locator('tr[data-document="other.txt"]').waitFor();

  const chip = page.locator('[data-tag="console-e2e"]');
  await expect(chip.textContent()).resolves.toContain('1');
  await chip.click();
  await page.locator('tr[data-document="other.txt"]').waitFor({ state: 'detached' });
  expect(await page.locator('tr[data-document]').count()).toBe(1);
  await page.locator('tr[data-document="notes.txt"]').getByText('Meeting notes').waitFor();
  await shot('documents');

  // Edit the tags: the filter's chip counts follow.
  const notes = page.locator('tr[data-document="notes.txt"]');
  await notes.getByRole('button', { name: 'Edit' }).click();
  await notes.getByLabel('tags').fill('console-e2e, reviewed');
  await notes.getByRole('button', { name: 'Save' }).click();
  await page.locator('[data-tag="reviewed"]').waitFor();
  const listed = await api('GET', `/api/documents?tag=reviewed`);
  expect(listed.json.documents.map((d: { filename: string }) => d.filename)).toEqual(['notes.txt']);
});

it('chats in the playground through a dropped connection, with one copy of every message', async () => {
  await nav('Playground');
  await page.getByLabel('workflow').selectOption('slow');
  const status = page.getByTestId('chat-status');
  await status.getByText('live', { exact: true }).waitFor();
  // Every status the connection shows, recorded in the page (a reconnect can be quicker than a poll).
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="chat-status"]')!;
    const seen: string[] = [];
    (window as unknown as { statuses: string[] }).statuses = seen;
    new MutationObserver(() => seen.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.getByLabel('message').fill('hello there');
  await page.getByRole('button', { name: 'Send' }).click();
  const streaming = page.getByTestId('streaming');
  await until(async () => ((await streaming.textContent({ timeout: 1000 }).catch(() => '')) ?? '').length > 80, 20_000, 'streaming text');
  await page.getByRole('button', { name: 'Drop connection' }).click();
  await until(() => page.evaluate(() => (window as unknown as { statuses: string[] }).statuses.some((s) => s !== 'live')), 10_000, 'the connection to drop');
  await status.getByText('live', { exact: true }).waitFor();

  const assistant = page.locator('.msg.assistant:not(.streaming) .text');
  await assistant.getByText('The end.', { exact: false }).waitFor({ timeout: 30_000 });
  expect(await assistant.allTextContents()).toEqual([SLOW.replace('{{last_user_message}}', 'hello there')]);
  expect(await page.locator('.msg.user .text').allTextContents()).toEqual(['hello there']);
  await until(async () => (await page.getByTestId('usage').textContent()) !== 'tokens 0 in / 0 out', 10_000, 'token usage');
  await shot('playground');
});

it('starts playground chats through the broker, as apps do: the plan it adds shows; the app’s active agents are listed and chatted with', async () => {
  const made = await api('POST', '/api/agents', { name: 'console-concierge', description: 'Greets visitors', system_prompt: 'You greet visitors of the console.' });
  expect(made.status).toBe(201);
  expect((await api('POST', '/api/agents', { name: 'console-resting', description: 'Inactive', system_prompt: 'You rest.' })).status).toBe(201);
  expect((await api('PATCH', '/api/agents/console-resting/status', { status: 'inactive' })).status).toBe(200);
  const starts: string[] = [];
  const record = (r: { method: () => string; url: () => string }) => {
    const path = new URL(r.url()).pathname;
    if (r.method() === 'POST' && (path === '/api/mozaiks/session' || /^\/api\/chats\/.*\/start$/.test(path))) starts.push(path);
  };
  page.on('request', record);
  try {
    await nav('Playground');
    // Read afresh: the agents made just now.
    await page.reload();
    const picker = page.getByLabel('workflow');
    await picker.locator('optgroup[label="Workflows"] option[value="assistant"]').waitFor({ state: 'attached' });
    const agentOptions = picker.locator(`optgroup[label="Agents of ${stack.appId}"] option`);
    await agentOptions.first().waitFor({ state: 'attached' });
    // Active agents only, each started as the workflow agent.<name>.
    expect(await agentOptions.evaluateAll((os) => os.map((o) => [o.textContent, (o as HTMLOptionElement).value]))).toEqual([['console-concierge', 'agent.console-concierge']]);

    const converse = async (choice: string, text: string) => {
      await picker.selectOption(choice);
      await page.getByTestId('chat-status').getByText('live', { exact: true }).waitFor();
      await page.getByLabel('message').fill(text);
      await page.getByRole('button', { name: 'Send' }).click();
      const reply = page.locator('.msg.assistant:not(.streaming)');
      await reply.first().waitFor();
      return { who: await reply.locator('.who').allTextContents(), text: await reply.locator('.text').allTextContents() };
    };
    // The plan is what the broker adds (its context source), as in the README's flow: not the default.
    const assistant = await converse('assistant', 'what plan am I on?');
    expect(assistant.text).toEqual([expect.stringContaining(`Your plan: ${CONTEXT_PLAN}.`)]);
    // A chat with the agent runs on its system prompt, with the same backend context.
    const agent = await converse('agent.console-concierge', 'hello');
    expect(agent.who).toEqual(['console-concierge']);
    expect(agent.text).toEqual([expect.stringContaining('on its system prompt: "You greet visitors of the console."')]);
    expect(agent.text[0]).toContain(`Your plan: ${CONTEXT_PLAN}.`);
    await shot('playground-agent');
    // Every chat started through the broker, none around it.
    expect(starts).toEqual(['/api/mozaiks/session', '/api/mozaiks/session']);
  } finally {
    page.off('request', record);
  }
  const runtimeChats = (await api('GET', `/api/sessions/${stack.appId}/${USER}`)).json as { workflow_name: string }[];
  expect(runtimeChats.map((c) => c.workflow_name)).toEqual(expect.arrayContaining(['assistant', 'agent.console-concierge']));
  // The app's agents as the tests after this one expect them: none (the open chat holds one: forced).
  for (const name of ['console-concierge', 'console-resting']) expect((await api('DELETE', `/api/agents/${name}?force=true`)).status).toBe(200);
});

it('shows the app’s tokens, cost and sessions over time on the dashboard, the chatting user among the top users, kept current without flooding the API', async () => {
  // An outside agent's call of a model no price table knows: its tokens count, its cost is unknown.
  const outside = await call(stack.url, 'POST', '/api/observability/events', {
    headers: { 'x-ingest-key': stack.ingestKey },
    body: { event_type: 'message', session_id: 'console-unpriced', user_id: 'outside-user', workflow: 'review', agent_name: 'local-reviewer', role: 'assistant', content: [{ type: 'text', text: 'looks fine' }], usage: { input_tokens: 120, output_tokens: 30, model: 'local-llama' } },
  });
  expect({ status: outside.status, accepted: outside.json?.accepted }).toEqual({ status: 200, accepted: 1 });
  await until(async () => (await api('GET', '/api/observability/usage?group_by=model')).json.rows.some((r: { model: string }) => r.model === 'local-llama'), 20_000, 'the unpriced call counted');

  const reads: string[] = [];
  const refused: string[] = [];
  const record = (r: { url: () => string; resourceType: () => string }) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/') && r.resourceType() !== 'websocket') reads.push(`${u.pathname}${u.search}`);
  };
  const refusal = (r: { status: () => number; url: () => string }) => void (r.status() >= 400 && refused.push(`${r.status()} ${r.url()}`));
  page.on('request', record);
  page.on('response', refusal);
  try {
    await nav('Dashboard');
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    const totals = page.getByTestId('totals');
    await totals.waitFor();
    const usageRead = (granularity: string) => reads.findLast((r) => r.startsWith('/api/observability/usage?') && new URLSearchParams(r.split('?')[1]).get('granularity') === granularity && new URLSearchParams(r.split('?')[1]).get('group_by') !== 'user,workflow,agent');
    /** The totals the page shows, against what the API answers for the range the page read (the page reads again on news: wait for them to agree). */
    const totalsMatchApi = async (granularity: string) => {
      const read = usageRead(granularity)!;
      expect(new URLSearchParams(read.split('?')[1]).get('app_id')).toBe(stack.appId);
      const { total } = (await api('GET', read)).json;
      const want = [
        num(total.calls),
        num(total.input_tokens),
        num(total.output_tokens),
        num(total.cache_read_tokens),
        num(total.cache_write_tokens),
        total.cost_usd === null ? 'unknown' : usd(total.cost_usd),
        total.unpriced_calls ? `${num(total.unpriced_calls)} unpriced` : 'none',
      ];
      await until(async () => JSON.stringify(await totals.locator('dd').allTextContents()) === JSON.stringify(want), 20_000, `the totals to be ${want.join(', ')}`).catch(async (e) => {
        throw new Error(`${(e as Error).message}; the page shows ${(await totals.locator('dd').allTextContents()).join(', ')}`);
      });
      return total;
    };

    // The last 24 hours by hour: the chats of the tests before (the scripted model, priced as npm start prices it) and the unpriced call.
    const day = await totalsMatchApi('hour');
    expect(day.calls).toBeGreaterThan(1);
    expect(day.cost_usd).toBeGreaterThan(0);
    expect(day.unpriced_calls).toBe(1);
    await expect(totals.locator('[data-total="unpriced_calls"] dd').textContent()).resolves.toBe('1 unpriced');
    // The first reads: the chart's usage, the tables' usage and the sessions, each once, each of the operator's app.
    expect(reads.slice(0, 4).map((r) => r.split('?')[0]).sort()).toEqual(['/api/observability/latency', '/api/observability/sessions', '/api/observability/usage', '/api/observability/usage']);

    // Turn latency: the turns of the tests before, p50 and p99 of the time to first text and to the end, as the API reports them.
    const latencyRead = reads.findLast((r) => r.startsWith('/api/observability/latency?'))!;
    expect(new URLSearchParams(latencyRead.split('?')[1]).get('app_id')).toBe(stack.appId);
    const latency = page.getByTestId('latency');
    await until(async () => {
      const { total } = (await api('GET', latencyRead)).json;
      const pair = (p: { p50: number; p99: number }) => `${duration(p.p50)} · ${duration(p.p99)}`;
      return total.turns > 0 && JSON.stringify(await latency.locator('dd').allTextContents()) === JSON.stringify([num(total.turns), pair(total.first_text_ms), pair(total.turn_ms)]);
    }, 20_000, 'the latency the page shows to be the API’s');

    // The charts drew lines: a canvas with coloured pixels (the axes and grid are grey), the models named.
    const tokensChart = page.locator('[data-chart="Tokens by model"]');
    const coloured = (chart: typeof tokensChart) =>
      chart.locator('canvas').evaluate((c: HTMLCanvasElement) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.max(Math.abs(d[i] - d[i + 1]), Math.abs(d[i + 1] - d[i + 2])) > 40) n++;
        return n;
      });
    expect(await coloured(tokensChart)).toBeGreaterThan(20);
    expect(Number(await tokensChart.getAttribute('data-points'))).toBeGreaterThan(0);
    await expect(tokensChart.locator('.u-legend').textContent()).resolves.toMatch(/scripted.*local-llama|local-llama.*scripted/);
    expect(await coloured(page.locator('[data-chart="Cost by model"]'))).toBeGreaterThan(20);
    // The unpriced model has no cost line: it is not drawn as $0.
    await expect(page.locator('[data-chart="Cost by model"] .u-legend').textContent()).resolves.not.toContain('local-llama');
    expect(await coloured(page.locator('[data-chart="Sessions"]'))).toBeGreaterThan(20);
    expect(await coloured(page.locator('[data-chart="Turn latency"]'))).toBeGreaterThan(20);
    expect(Number(await page.getByTestId('sessions-started').textContent())).toBeGreaterThan(0);

    // The chatting user among the top users, with a cost; the outside user's calls unpriced.
    const users = page.getByTestId('top-users');
    const userRow = users.locator('tbody tr', { has: page.getByRole('cell', { name: USER, exact: true }) });
    await expect(userRow.locator('td').last().textContent()).resolves.toMatch(/^\$\d/);
    const outsideRow = users.locator('tbody tr', { has: page.getByRole('cell', { name: 'outside-user', exact: true }) });
    await expect(outsideRow.locator('td').last().textContent()).resolves.toBe('unpriced');
    await page.getByTestId('top-workflows').locator('tbody tr', { hasText: 'local-reviewer' }).getByRole('cell', { name: 'review', exact: true }).waitFor();
    await shot('dashboard');

    // Live: a chat runs while the page is open; its usage shows without a reload, read again a bounded number of times.
    const before = reads.length;
    const since = Date.now();
    const started = await api('POST', `/api/chats/${stack.appId}/assistant/start`, { user_id: USER });
    expect(started.status).toBe(201);
    const socket = await TestSocket.connect(`${stack.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${stack.token}`);
    sockets.push(socket);
    await socket.waitFor((m) => m.type === 'chat_meta');
    socket.send({ type: 'user.input.submit', text: 'what plan am I on?' });
    await socket.waitFor((m) => m.type === 'chat.run_complete', 20_000);
    const after = await until(async () => {
      const { total } = (await api('GET', usageRead('hour')!)).json;
      return total.calls > day.calls && total;
    }, 20_000, 'the chat’s call counted');
    await until(async () => (await totals.locator('[data-total="calls"] dd').textContent()) === num(after.calls), 20_000, 'the page to show the new call');
    // Well within REFRESH_MS: the live socket's news brought it. At most one read of four calls (usage twice, latency, sessions) per MIN_GAP_MS, and one more pending.
    const elapsed = Date.now() - since;
    expect(elapsed).toBeLessThan(REFRESH_MS);
    const again = reads.length - before;
    expect(again).toBeGreaterThanOrEqual(4);
    expect(again).toBeLessThanOrEqual(4 * (2 + Math.floor(elapsed / MIN_GAP_MS)));

    // The last 7 days by day, split by app: the same totals as the API's for that range, one line for the app.
    await page.getByLabel('range').selectOption({ label: 'Last 7 days, by day' });
    await page.getByLabel('split by').selectOption('app');
    await page.locator('[data-chart="Tokens by app"] .u-legend').getByText(stack.appId).waitFor();
    await until(async () => !!usageRead('day') && new URLSearchParams(usageRead('day')!.split('?')[1]).get('group_by') === 'app', 10_000, 'a read by day and app');
    await totalsMatchApi('day');
    // By workflow: the workflows the chats of the tests before ran, one line each.
    await page.getByLabel('split by').selectOption('workflow');
    await page.locator('[data-chart="Tokens by workflow"] .u-legend').getByText('slow', { exact: true }).waitFor();

    expect(refused).toEqual([]);
    expect(await page.locator('.error').count()).toBe(0);
  } finally {
    page.off('request', record);
    page.off('response', refusal);
  }
});

it('lists sessions by readable titles with model, tokens and cost, sorts, searches, narrows to days and groups them by user; a Playground chat links to its session', async () => {
  type S = { session_id: string; title: string | null; user_id: string | null; model: string | null; cost_usd: number | null; unpriced_calls: number; usage: { total_tokens: number } };
  const all = async (query = '') => (await api('GET', `/api/observability/sessions?limit=500${query}`)).json.sessions as S[];
  const requests: string[] = [];
  const record = (r: { url: () => string; resourceType: () => string }) => {
    const u = new URL(r.url());
    if (u.pathname === '/api/observability/sessions' && r.resourceType() !== 'websocket') requests.push(u.search);
  };
  page.on('request', record);
  try {
    // A Playground chat, asked a question: once it has an id, it links to its session.
    const ask = 'Which invoices from March are still unpaid, and who owes the most?';
    await nav('Playground');
    await page.getByLabel('workflow').selectOption('assistant');
    await page.getByTestId('chat-status').getByText('live', { exact: true }).waitFor();
    await page.getByLabel('message').fill(ask);
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.msg.assistant:not(.streaming)').first().waitFor();
    const link = page.getByRole('link', { name: 'Open session' });
    const chatId = decodeURIComponent((await link.getAttribute('href'))!.split('/').pop()!);
    expect(await page.getByText(`chat ${chatId}`).count()).toBe(1);
    // Recorded, its call priced (the test stack prices the scripted model as npm start does).
    const recorded = await until(async () => {
      const s = (await api('GET', `/api/observability/sessions/${chatId}`)).json as S;
      return s.cost_usd !== undefined && s.cost_usd !== null && s.usage.total_tokens > 0 && s;
    }, 20_000, 'the chat recorded and priced');
    expect(recorded).toMatchObject({ title: ask, user_id: USER, unpriced_calls: 0 });
    expect(recorded.model).toBeTruthy();

    await link.click();
    expect(new URL(page.url()).pathname).toBe(`/console/sessions/${encodeURIComponent(chatId)}`);
    const detail = page.getByTestId('session-detail');
    await detail.getByRole('heading', { name: ask, exact: true }).waitFor();
    await detail.locator('.bubble.user .text').getByText(ask, { exact: true }).waitFor();
    await page.locator(`tr.selected[data-session="${chatId}"]`).waitFor();
    await detail.getByRole('button', { name: 'Close' }).click();

    // The wide list: what each session is, whose, on which model, for how many tokens and dollars.
    const row = (id: string) => page.locator(`tr[data-session="${id}"]`);
    const cell = (id: string, col: string) => row(id).locator(`[data-col="${col}"]`);
    await expect(page.getByTestId('sessions-table').locator('thead th').allTextContents()).resolves.toEqual(['Title', 'User', 'Workflow / agent', 'Status', 'Started', 'Duration', 'Model', 'Tokens', 'Cost', '']);
    await expect(cell(chatId, 'title').locator('.name').textContent()).resolves.toBe(ask);
    await expect(cell(chatId, 'user').textContent()).resolves.toBe(USER);
    await expect(cell(chatId, 'agent').textContent()).resolves.toMatch(/^assistant/);
    await expect(cell(chatId, 'model').textContent()).resolves.toBe(recorded.model);
    await until(async () => (await cell(chatId, 'tokens').textContent()) === num((await all()).find((s) => s.session_id === chatId)!.usage.total_tokens), 10_000, 'the tokens the API has');
    const priced = (await all()).find((s) => s.session_id === chatId)!;
    await expect(cell(chatId, 'cost').textContent()).resolves.toBe(usd(priced.cost_usd!));
    // The outside agent's call of a model with no price (the dashboard's test): unknown, not $0.
    await expect(cell('console-unpriced', 'cost').textContent()).resolves.toBe('unpriced');
    await expect(cell('console-unpriced', 'model').textContent()).resolves.toBe('local-llama');
    // A runtime chat without a name reads as its first message, not its id.
    const chats = (await all(`&user_id=${USER}&source=runtime`)).filter((s) => s.title);
    expect(chats.length).toBeGreaterThan(3);
    for (const s of chats.slice(0, 5)) await expect(cell(s.session_id, 'title').locator('.name').textContent()).resolves.toBe(s.title);
    await shot('sessions-list');

    // Sorted by cost, dearest first, the unknown last.
    await page.getByTestId('sessions-table').getByRole('button', { name: 'Cost' }).click();
    await page.locator('th[aria-sort="descending"]').getByText('Cost').waitFor();
    const cost = new Map((await all()).map((s) => [s.session_id, s.cost_usd]));
    const order = await page.locator('tr[data-session]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session')!));
    const costs = order.map((id) => cost.get(id) ?? null);
    expect(costs[0]).toBe(Math.max(...[...cost.values()].filter((c): c is number => c !== null)));
    for (let i = 1; i < costs.length; i++) {
      if (costs[i] === null) continue;
      expect(costs[i - 1]).not.toBeNull();
      expect(costs[i - 1]!).toBeGreaterThanOrEqual(costs[i]!);
    }

    // Search: by the words of a first message, by a user id; the same sessions the API finds.
    const search = page.getByLabel('search');
    const listed = () => page.locator('tr[data-session]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session')!).sort());
    await search.fill('still UNPAID');
    await until(async () => JSON.stringify(await listed()) === JSON.stringify([chatId]), 10_000, 'the list narrowed to the chat');
    expect((await all('&q=still%20UNPAID')).map((s) => s.session_id)).toEqual([chatId]);
    await search.fill('outside-us');
    await until(async () => JSON.stringify(await listed()) === JSON.stringify(['console-unpriced']), 10_000, 'the list narrowed to the user');
    expect(requests.some((q) => new URLSearchParams(q).get('q') === 'outside-us')).toBe(true);
    await search.fill('');

    // Days: none active tomorrow; today's hold the chat. The server is asked for the range too.
    const day = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    const today = day(new Date());
    await page.getByLabel('active from').fill(day(new Date(Date.now() + 86_400_000)));
    await page.getByText('No sessions match these filters.').waitFor();
    await page.getByLabel('active from').fill(today);
    await page.getByLabel('active to').fill(today);
    await row(chatId).waitFor();
    const ranged = requests.map((q) => new URLSearchParams(q)).filter((p) => p.get('from') && p.get('to'));
    expect(ranged.length).toBeGreaterThan(0);
    // One local day, from its start (23 to 25 hours on a day the clocks change).
    const span = Date.parse(ranged.at(-1)!.get('to')!) - Date.parse(ranged.at(-1)!.get('from')!);
    expect(span).toBeGreaterThanOrEqual(23 * 3_600_000);
    expect(span).toBeLessThanOrEqual(25 * 3_600_000);
    await page.getByLabel('active from').fill('');
    await page.getByLabel('active to').fill('');

    // Grouped by user (sorted by user: the groups A to Z, those of no user last), each user's
    // sessions under a row with their count, tokens and cost, as the API's sessions add up.
    await page.getByTestId('sessions-table').getByRole('button', { name: 'User' }).click();
    await page.getByLabel('group by user').check();
    const group = (user: string) => page.locator(`tr.group[data-user="${user}"]`);
    await group(USER).waitFor();
    const mine = await all(`&user_id=${USER}`);
    const figures = async (user: string) => Object.fromEntries(await group(user).locator('[data-figure]').evaluateAll((els) => els.map((el) => [el.getAttribute('data-figure'), el.textContent])));
    await until(async () => (await figures(USER)).sessions === `${num(mine.length)} sessions`, 10_000, 'the user’s sessions counted');
    const mineCost = mine.reduce((sum, s) => sum + (s.cost_usd ?? 0), 0);
    const mineUnpriced = mine.reduce((sum, s) => sum + s.unpriced_calls, 0);
    expect(await figures(USER)).toEqual({
      sessions: `${num(mine.length)} sessions`,
      tokens: `${num(mine.reduce((sum, s) => sum + s.usage.total_tokens, 0))} tokens`,
      cost: mineUnpriced ? `${usd(mineCost)} + ${num(mineUnpriced)} unpriced` : usd(mineCost),
    });
    // Under its user's row: every row after it up to the next group is that user's.
    const layout = await page.locator('[data-testid="sessions-table"] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-user') ?? `s:${r.getAttribute('data-session')}`));
    const at = layout.indexOf(USER);
    const next = layout.findIndex((x, i) => i > at && !x.startsWith('s:'));
    const under = layout.slice(at + 1, next === -1 ? undefined : next).map((x) => x.slice(2));
    expect(under.length).toBeGreaterThan(0);
    expect(under.every((id) => mine.some((s) => s.session_id === id))).toBe(true);
    expect(layout.filter((x) => !x.startsWith('s:'))).toEqual([USER, 'outside-user', '']);
    await shot('sessions-grouped');
    // Searched, still grouped: the outside user's one unpriced session.
    await search.fill('outside-us');
    await until(async () => (await page.locator('tr.group').count()) === 1 && (await group('outside-user').count()) === 1, 10_000, 'one group');
    expect(await figures('outside-user')).toEqual({ sessions: '1 session', tokens: '150 tokens', cost: 'unpriced' });
    await search.fill('');
    await page.getByLabel('group by user').uncheck();
    expect(await page.locator('.error').count()).toBe(0);
  } finally {
    page.off('request', record);
  }
});

it('lets an operator of two apps choose the app it acts in: agents, documents and the playground of the chosen app, kept for the tab', async () => {
  const [appA, appB] = [stack.appId, `${stack.appId}-b`];
  const operatorOf = (...apps: string[]) => stack.sign({ sub: 'two-app-operator', apps, roles: ['operator'] });
  const [tokenA, tokenB, both] = await Promise.all([operatorOf(appA), operatorOf(appB), operatorOf(appA, appB)]);
  // One agent in each app, through the gateway, each with a token of its app alone.
  for (const [token, name] of [
    [tokenA, 'only-in-a'],
    [tokenB, 'only-in-b'],
  ]) {
    const made = await call(stack.url, 'POST', '/api/agents', { token, body: { name, description: `lives in one app`, system_prompt: 'You help.' } });
    expect({ status: made.status, body: made.json }).toMatchObject({ status: 201 });
  }

  const context = await browser.newContext();
  try {
    const p = await context.newPage();
    p.setDefaultTimeout(20_000);
    p.on('pageerror', (e) => pageErrors.push(e.message));
    const feeds = recordLiveFeeds(p);
    /** Every call the page makes to the services (method, path, and the app it names in a header), and every refusal. */
    const requests: string[] = [];
    const refused: string[] = [];
    p.on('request', (r) => {
      const u = new URL(r.url());
      if (!u.pathname.startsWith('/api/') || r.resourceType() === 'websocket') return;
      const app = r.headers()['x-tessera-app'] ?? (u.pathname === '/api/mozaiks/session' ? r.postDataJSON()?.app_id : undefined);
      requests.push(`${r.method()} ${u.pathname}${u.search}${app ? ` [${app}]` : ''}`);
    });
    const chatSockets: string[] = [];
    p.on('websocket', (ws) => void (new URL(ws.url()).pathname.startsWith('/ws/') && chatSockets.push(new URL(ws.url()).pathname)));
    p.on('response', (r) => void (r.status() >= 400 && refused.push(`${r.status()} ${r.request().method()} ${r.url()}`)));
    const chooser = p.getByLabel('working app');
    const agents = () => p.locator('tr[data-agent]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-agent')));
    const documents = () => p.locator('tr[data-document]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-document')));

    await p.goto(`${stack.url}/console/`);
    await p.getByLabel('token').fill(both);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await p.getByTestId('totals').waitFor();
    await p.getByText('● live').waitFor();
    // The chooser sits beside who is signed in, offering the token's apps, the first chosen.
    await expect(p.locator('header .who').getByLabel('working app').locator('option').allTextContents()).resolves.toEqual([appA, appB]);
    await expect(chooser.inputValue()).resolves.toBe(appA);

    await p.getByRole('navigation').getByRole('link', { name: 'Agents' }).click();
    await p.locator('tr[data-agent="only-in-a"]').waitFor();
    expect(await agents()).toEqual(['only-in-a']);

    await chooser.selectOption(appB);
    await p.locator('tr[data-agent="only-in-b"]').waitFor();
    expect(await agents()).toEqual(['only-in-b']);
    // Kept for the tab, like the token: a reload stays in the chosen app.
    expect(await p.evaluate(() => sessionStorage.getItem('tessera.console.app'))).toBe(appB);
    await p.reload();
    await p.locator('tr[data-agent="only-in-b"]').waitFor();
    await expect(chooser.inputValue()).resolves.toBe(appB);

    // An agent made on the page lands in the chosen app, and only there.
    await p.getByRole('button', { name: 'New agent' }).click();
    await p.getByLabel('Name').fill('made-in-b');
    await p.getByLabel('Description').fill('made on the page');
    await p.locator('.cm-content').click();
    await p.keyboard.type('You help in B.');
    await p.getByRole('button', { name: 'Create' }).click();
    await p.getByText('Agent “made-in-b” saved.').waitFor();
    // The list is read again after the save: wait for that read, then compare.
    await until(async () => (await agents()).includes('made-in-b'), 10_000, 'the list read again after the save');
    expect(await agents()).toEqual(['made-in-b', 'only-in-b']);
    expect((await call(stack.url, 'GET', '/api/agents/made-in-b', { token: tokenB })).status).toBe(200);
    expect((await call(stack.url, 'GET', '/api/agents/made-in-b', { token: tokenA })).status).toBe(404);
    await p.screenshot({ path: join(SHOTS, 'agents-two-apps.png') });

    // A document uploaded into the chosen app; the list is that app's.
    await p.getByRole('navigation').getByRole('link', { name: 'Documents' }).click();
    await p.getByText(`into app ${appB}`).waitFor();
    await p.getByTestId('file-input').setInputFiles({ name: 'b-only.txt', mimeType: 'text/plain', buffer: Buffer.from('for app b\n') });
    await p.locator('[data-upload="b-only.txt"]').getByText('done').waitFor();
    await p.locator('tr[data-document="b-only.txt"]').waitFor();
    expect(await documents()).toEqual(['b-only.txt']);
    const inB = await call(stack.url, 'GET', `/api/documents?app_id=${appB}`, { token: both });
    expect(inB.json.documents.map((d: { filename: string; app_id: string }) => [d.filename, d.app_id])).toEqual([['b-only.txt', appB]]);
    await chooser.selectOption(appA);
    await p.getByText(`into app ${appA}`).waitFor();
    await p.locator('tr[data-document="notes.txt"]').waitFor();
    expect((await documents()).sort()).toEqual(['notes.txt', 'other.txt']);

    // No refusal, no error on the page, and no call but these: the dashboard's reads name the first app, each agents call names its app, each document list its app.
    expect(refused).toEqual([]);
    expect(await p.locator('.error').count()).toBe(0);
    const isDashboard = (r: string) => r.startsWith('GET /api/observability/usage?') || r.startsWith('GET /api/observability/latency?') || r.startsWith('GET /api/observability/sessions?app_id=');
    const dashboardApps = requests.filter(isDashboard).map((r) => `${new URL(r.split(' ')[1], stack.url).pathname} ${new URL(r.split(' ')[1], stack.url).searchParams.get('app_id')}`);
    expect(dashboardApps.sort()).toEqual([`/api/observability/latency ${appA}`, `/api/observability/sessions ${appA}`, `/api/observability/usage ${appA}`, `/api/observability/usage ${appA}`]);
    const q = (app: string) => `?app_id=${app}&limit=50`;
    expect(requests.filter((r) => !isDashboard(r)).sort()).toEqual(
      [
        'GET /api/observability/sessions?limit=1',
        `GET /api/agents [${appA}]`,
        `GET /api/agents [${appB}]`,
        `GET /api/agents [${appB}]`,
        `POST /api/agents [${appB}]`,
        `GET /api/agents [${appB}]`,
        `GET /api/documents${q(appB)}`,
        `GET /api/documents/tags?app_id=${appB}`,
        'POST /api/documents',
        `GET /api/documents${q(appB)}`,
        `GET /api/documents/tags?app_id=${appB}`,
        `GET /api/documents${q(appA)}`,
        `GET /api/documents/tags?app_id=${appA}`,
      ].sort(),
    );
    requests.length = 0;

    // The playground's chat is the chosen app's.
    await chooser.selectOption(appB);
    await p.getByRole('navigation').getByRole('link', { name: 'Playground' }).click();
    await p.getByTestId('chat-status').getByText('live', { exact: true }).waitFor();
    // Started through the broker, in the chosen app; the app's agents listed; the socket the chat's in that app.
    const chatCalls = requests.filter((r) => /^\w+ \/api\/(chats|sessions|mozaiks)\//.test(r));
    expect(chatCalls).toContain(`POST /api/mozaiks/session [${appB}]`);
    expect(chatCalls).toContain(`GET /api/chats/${appB}/agents`);
    expect(chatCalls.filter((r) => !r.includes(appB))).toEqual([]);
    expect(chatSockets.length).toBeGreaterThan(0);
    expect(chatSockets.filter((path) => path.split('/')[3] !== appB)).toEqual([]);

    // Lists that span both apps name each row's app: the bridge's sessions as observability recorded them.
    await p.getByRole('navigation').getByRole('link', { name: 'Bridge' }).click();
    await expect(p.getByTestId('bridge-sessions').locator('thead th').allTextContents()).resolves.toEqual(['Session', 'App', 'User', 'Status', 'Agent', 'Events', 'Last activity']);
    expect(refused).toEqual([]);
    // Its live socket too carries only what it shows.
    expect(new URL(feeds[0].url).searchParams.get('events')).toBe('subscribed');
  } finally {
    await context.close();
  }
});

it('lists the agent servers of the operator’s app with their owners, live, and says so in words when the bridge is gone', async () => {
  // The stack's token is what the Bridge page needs: an operator (the bridge's servers list) of the stack's app (whose sessions it lists).
  expect(JSON.parse(Buffer.from(stack.token.split('.')[1], 'base64url').toString())).toMatchObject({ sub: USER, apps: [stack.appId], roles: ['operator'] });

  // A client starts a bridge session through the gateway with its platform token, as a SCADA
  // frontend does: the session is the token's app and user.
  const boot = await api('POST', '/api/bridge/session/bootstrap', { scadaUrl: 'https://scada-console.example.com/', accessToken: `Bearer at-console-${Date.now()}` });
  expect({ status: boot.status, body: boot.json }).toMatchObject({ status: 200, body: { isNew: true, appId: stack.appId, userId: USER } });
  const { sessionId, sessionToken, websocketUrl, opencodeUrl, opencodeAuth, scadaUrl } = boot.json;
  expect(websocketUrl).toBe(`${stack.url.replace('http', 'ws')}/api/bridge/session/${sessionId}/ws?sessionToken=${encodeURIComponent(sessionToken)}`);
  // Its frontend's socket, through the gateway (the platform token for the gateway, the session's own token for the bridge).
  const socket = await TestSocket.connect(`${websocketUrl}&access_token=${stack.token}`);
  sockets.push(socket);

  // Another user of the app, not an operator, whose SCADA URL carries a credential in its query.
  const user = 'scada-user';
  const userToken = await stack.sign({ sub: user, apps: [stack.appId] });
  const theirs = await call(stack.url, 'POST', '/api/bridge/session/bootstrap', {
    token: userToken,
    body: { scadaUrl: 'https://scada-plant.example.com/plant?apiKey=plant-secret-123', accessToken: `Bearer at-plant-${Date.now()}` },
  });
  expect({ status: theirs.status, body: theirs.json }).toMatchObject({ status: 200, body: { isNew: true, appId: stack.appId, userId: user } });
  const theirId: string = theirs.json.sessionId;
  // They cannot bootstrap in another user's name: the service key (which names any owner) never
  // passes the gateway, so their token speaks, and its subject is not that user.
  const forged = await call(stack.url, 'POST', '/api/bridge/session/bootstrap', {
    token: userToken,
    headers: { 'x-tessera-service-key': 'forged' },
    body: { scadaUrl: 'https://scada-console.example.com/', accessToken: `Bearer at-forged-${Date.now()}`, appId: stack.appId, userId: USER },
  });
  expect({ status: forged.status, body: forged.json }).toMatchObject({ status: 403, body: { error: { message: expect.stringContaining('subject') } } });
  // Their platform token alone opens their session's socket; the operator's session is as absent to them as one that never was.
  const theirSocket = await TestSocket.connect(`${theirs.json.websocketUrl}&access_token=${userToken}`);
  sockets.push(theirSocket);
  await theirSocket.waitType('session.snapshot');
  expect((await call(stack.url, 'GET', `/api/bridge/session/${sessionId}/info`, { token: userToken })).status).toBe(404);
  expect(await new TestSocket(`${websocketUrl}&access_token=${userToken}`).closed).toBe(4404);
  // The servers list is for operators, and each operator sees the servers of their own apps.
  expect((await call(stack.url, 'GET', '/api/bridge/session/servers', { token: userToken })).status).toBe(403);
  const elsewhere = await call(stack.url, 'GET', '/api/bridge/session/servers', { token: await stack.sign({ sub: 'other-operator', apps: [`${stack.appId}-other`], roles: ['operator'] }) });
  expect({ status: elsewhere.status, servers: elsewhere.json.servers }).toEqual({ status: 200, servers: [] });
  // The app's operator reaches the user's session.
  expect((await api('GET', `/api/bridge/session/${theirId}/info`)).status).toBe(200);

  // The agent server says something: it reaches the socket and observability.
  const emitted = await fetch(`${opencodeUrl}/emit`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${opencodeAuth.username}:${opencodeAuth.password}`).toString('base64')}` },
    body: JSON.stringify({ type: 'message.updated', properties: { info: { role: 'assistant', text: 'checking the pumps' } } }),
  });
  expect(emitted.status).toBe(204);
  await socket.waitFor((m) => JSON.stringify(m).includes('checking the pumps'), 15_000);

  await nav('Bridge');
  await page.getByRole('heading', { name: 'Bridge', exact: true }).waitFor();
  const servers = page.getByTestId('servers-table');
  const server = servers.locator('tbody tr', { hasText: sessionId });
  await server.getByText(scadaUrl, { exact: true }).waitFor();
  const columns = await servers.locator('thead th').allTextContents();
  expect(columns).toEqual(expect.arrayContaining(['App', 'User', 'SCADA URL', 'Port / pid', 'Sockets']));
  const cell = (row: typeof server, column: string) => row.locator('td').nth(columns.indexOf(column)).textContent();
  // Whose each server is: the operator's own, and the other user's (its SCADA URL without the query).
  await expect(cell(server, 'App')).resolves.toBe(stack.appId);
  await expect(cell(server, 'User')).resolves.toBe(USER);
  const plant = servers.locator('tbody tr', { hasText: theirId });
  await expect(cell(plant, 'App')).resolves.toBe(stack.appId);
  await expect(cell(plant, 'User')).resolves.toBe(user);
  await expect(cell(plant, 'SCADA URL')).resolves.toBe('https://scada-plant.example.com/plant');
  expect(await page.content()).not.toContain('plant-secret-123');
  await until(async () => (await cell(server, 'Sockets')) === '1', 20_000, 'the socket counted');
  await expect(cell(server, 'Port / pid')).resolves.toMatch(/^\d+ \/ \d+$/);
  // Observed: observability's record of the same session, under its owner (the page refreshes every 5 s).
  await server.getByRole('button', { name: /^running · \d+ events$/ }).waitFor();
  const recorded = page.getByTestId('bridge-sessions');
  const recordedColumns = await recorded.locator('thead th').allTextContents();
  const observed = recorded.locator('tbody tr', { hasText: 'bridge scada-console.example.com' });
  await observed.locator('.badge.running').waitFor();
  await expect(observed.locator('td').nth(recordedColumns.indexOf('Agent')).textContent()).resolves.toBe('opencode');
  await expect(observed.locator('td').nth(recordedColumns.indexOf('User')).textContent()).resolves.toBe(USER);
  const observedPlant = recorded.locator('tbody tr', { hasText: 'bridge scada-plant.example.com' });
  await observedPlant.locator('.badge.running').waitFor();
  await expect(observedPlant.locator('td').nth(recordedColumns.indexOf('User')).textContent()).resolves.toBe(user);
  await shot('bridge');

  // Closed by their clients (one with the session's token, one with the owner's platform token
  // alone): the agent servers go, the sessions are recorded as ended.
  const closed = await call(stack.url, 'DELETE', `/api/bridge/session/${sessionId}`, { token: stack.token, headers: { 'x-session-token': sessionToken } });
  expect(closed.status).toBe(204);
  expect((await call(stack.url, 'DELETE', `/api/bridge/session/${theirId}`, { token: userToken })).status).toBe(204);
  await page.getByText('No agent servers are running.').waitFor();
  await observed.locator('.badge.running').waitFor({ state: 'detached' });
  await observedPlant.locator('.badge.running').waitFor({ state: 'detached' });

  // The bridge gone: the page says which read failed, and still shows what observability has.
  const bridge = stack.processes.find((p) => p.name === 'bridge')!;
  stopped.add(bridge.name);
  await bridge.stop();
  await page.getByText(/Could not read agent servers: .*bridge/).waitFor();
  await observed.waitFor();
});

it('sets budgets and shows what is spent and left; a spent budget refuses a new Playground chat with the reason, and removing it lets the user chat again', async () => {
  const user = OPERATOR; // who the Playground chats as (the broker starts the operator's own chats)
  const budgets = () => api('GET', `/api/budgets?app_id=${stack.appId}`);
  const requests: string[] = [];
  const record = (r: { method: () => string; url: () => string }) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/budgets')) requests.push(`${r.method()} ${u.pathname}`);
  };
  const ask = async (text: string) => {
    await nav('Playground');
    await page.getByLabel('workflow').selectOption('slow');
    await page.getByTestId('chat-status').getByText('live', { exact: true }).waitFor();
    await page.getByLabel('message').fill(text);
    await page.getByRole('button', { name: 'Send' }).click();
  };
  const answered = (text: string) => page.locator('.msg.assistant:not(.streaming) .text').getByText(`You asked: ${text}.`).waitFor({ timeout: 30_000 });
  // The user has spent something today, whatever ran before.
  await ask('before any budget');
  await answered('before any budget');
  page.on('request', record);
  try {
    await nav('Budgets');
    await page.getByRole('heading', { name: 'Budgets' }).waitFor();
    // The app: a million tokens a day, $5 a month, with what its users spent so far shown against them.
    await page.getByLabel('Tokens / day').fill('1000000');
    await page.getByLabel('USD / month').fill('5');
    await page.getByRole('button', { name: 'Save budget' }).click();
    await page.locator('tr[data-budget="app"]').getByText(/left\)/).first().waitFor();
    await page.getByLabel('Tokens / day').fill('');
    await page.getByLabel('USD / month').fill('');
    // Each user: 100,000 tokens a day, 30 turns a minute.
    await page.getByLabel('whose budget').selectOption('every');
    await page.getByLabel('Tokens / day').fill('100000');
    await page.getByLabel('Turns / minute').fill('30');
    await page.getByRole('button', { name: 'Save budget' }).click();
    await page.locator('tr[data-budget="*"]').getByText('Each user').waitFor();
    // This user's own: 1 token a day, already spent by the chats of the tests before.
    await page.getByLabel('whose budget').selectOption('user');
    await page.getByLabel('user id').fill(user);
    await page.getByLabel('Tokens / day').fill('1');
    await page.getByLabel('Turns / minute').fill('');
    await page.getByRole('button', { name: 'Save budget' }).click();
    const row = page.locator(`tr[data-budget="${user}"]`);
    await row.locator('.limit.spent').getByText('(spent)').waitFor();
    const listed = (await budgets()).json.budgets as { user_id: string | null; limits: Record<string, number>; remaining: Record<string, number> | null; spent: { day: { tokens: number } } | null }[];
    expect(listed.map((b) => [b.user_id, b.limits])).toEqual([
      [null, { tokens_per_day: 1_000_000, cost_usd_per_month: 5 }],
      ['*', { tokens_per_day: 100_000, turns_per_minute: 30 }],
      [user, { tokens_per_day: 1 }],
    ]);
    const mine = listed.find((b) => b.user_id === user)!;
    expect(mine.remaining?.tokens_per_day).toBe(0);
    // The page shows the service's figure, as it formats it.
    await row.getByText(`${num(mine.spent!.day.tokens)} of 1`).waitFor();

    // The lookup: which budget applies to the user, and what they spent.
    await page.getByLabel('look up user').fill(user);
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByTestId('user-budget').getByText('their own').waitFor();
    await shot('budgets');

    // In the Playground, a new chat is refused with the budget's own words.
    await nav('Playground');
    await page.getByLabel('workflow').selectOption('slow');
    await page.getByText(/The chat could not start: Your daily budget of 1 tokens is spent; it resets at/).waitFor();

    // Removed: the every-user budget applies again, and the user's next message is answered.
    await nav('Budgets');
    await row.getByRole('button', { name: 'Remove' }).click();
    await row.waitFor({ state: 'detached' });
    expect((await api('GET', `/api/budgets/${stack.appId}/users/${user}`)).json).toMatchObject({ source: 'every_user' });
    await page.locator('tr[data-budget="*"]').getByRole('button', { name: 'Remove' }).click();
    await page.locator('tr[data-budget="app"]').getByRole('button', { name: 'Remove' }).click();
    await page.getByText(`No budgets: ${stack.appId} and its users may spend without limit.`).waitFor();
    expect((await budgets()).json.budgets).toEqual([]);
  } finally {
    page.off('request', record);
  }
  await ask('after the budget');
  await answered('after the budget');
  // What the page sent: one read on opening, one after each change, the lookup; no polling burst.
  expect(requests.filter((r) => r.startsWith('PUT'))).toEqual([`PUT /api/budgets/${stack.appId}`, `PUT /api/budgets/${stack.appId}/users/*`, `PUT /api/budgets/${stack.appId}/users/${user}`]);
  expect(requests.filter((r) => r.startsWith('DELETE'))).toHaveLength(3);
  expect(requests.filter((r) => r.startsWith('GET')).length).toBeLessThan(20);
});

it('received on its live socket no event of a session it did not open, all along', async () => {
  // Meanwhile chats ran on the Agents and Playground pages and bridge sessions spoke on the Bridge
  // page: observability recorded their events, and none of them reached the console's socket.
  expect((await api('GET', '/api/observability/sessions?source=bridge')).json.sessions.length).toBeGreaterThan(0);
  expect(liveFeeds.length).toBeGreaterThan(0);
  for (const feed of liveFeeds) {
    expect(new URL(feed.url).searchParams.get('events')).toBe('subscribed');
    expect(unsubscribedEvents(feed)).toEqual([]);
  }
});
