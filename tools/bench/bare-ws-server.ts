/**
 * The baseline server of tools/bench/runtime.ts: a bare `ws` server with nothing of Tessera in it
 * (no auth, no database, no parsing of what it relays), on the same URL shape as the runtime
 * (/ws/{workflow}/{app}/{chat}/{user}), started as a child process:
 *
 *   BARE_PORT=… REDIS_URL=… node --import tsx tools/bench/bare-ws-server.ts
 *
 * - Every socket gets a `chat_meta` on connect and is subscribed (one Redis SUBSCRIBE per chat,
 *   shared by that chat's sockets) to the chat's pub/sub channel; each message published there is
 *   sent as is to the chat's sockets: the raw fan-out ceiling (Redis pub/sub → ws broadcast).
 * - `user.input.submit` is answered at once with a turn's worth of timeline envelopes shaped like
 *   the runtime's (20 × chat.text, done, usage, run_complete): the floor of the turn benchmark's
 *   client protocol with no agent, storage or queue behind it.
 * - `client.resume` gets a `chat.resume_boundary` (there is nothing to replay).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const PORT = Number(process.env.BARE_PORT ?? 0);
// The benchmarks pass REDIS_URL; run alone, this checkout's Redis with its generated password (not
// through @tessera/kit/testing, whose imports would weigh on this baseline's memory figures).
const REDIS_URL = process.env.REDIS_URL || localRedisUrl();
function localRedisUrl(): string {
  try {
    return `redis://:${readFileSync(resolve(__dirname, '../../.data/secrets/redis.password'), 'utf8').trim()}@127.0.0.1:6379`;
  } catch {
    return 'redis://127.0.0.1:6379';
  }
}
/** The channel of a chat; the runtime's naming, so that the same publisher feeds both. */
const channelOf = (chat: string) => `${process.env.BARE_CHANNEL_PREFIX ?? 'bare'}:chat:${chat}:events`;
const WORDS = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty'.split(' ');

// The ceiling is measured on one Redis (plain SUBSCRIBE, no kit): a cluster URL is refused rather
// than misread as a host name.
if (!/^rediss?:\/\//.test(REDIS_URL)) throw new Error('bare-ws-server: REDIS_URL must name one Redis (redis://host:port); the bare ceiling does not run on a cluster');
const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
const byChannel = new Map<string, Set<WebSocket>>();

sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  const set = byChannel.get(channel.toString());
  if (!set) return;
  for (const ws of set) ws.send(message, { binary: false });
});

const server = http.createServer((req, res) => {
  if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 256 * 1024 });

wss.on('connection', (ws, req) => {
  const parts = new URL(req.url ?? '/', 'http://x').pathname.split('/');
  const chat = decodeURIComponent(parts[4] ?? 'none');
  const channel = channelOf(chat);
  let set = byChannel.get(channel);
  const subscribed = set ? Promise.resolve() : sub.subscribe(channel).then(() => undefined);
  if (!set) byChannel.set(channel, (set = new Set()));
  set.add(ws);
  let index = 0;
  let turn = 0;
  const now = () => new Date().toISOString();
  void subscribed.then(() => ws.send(JSON.stringify({ type: 'chat_meta', data: { chat_id: chat, status: 'created', last_index: 0 }, timestamp: now() })));
  ws.on('message', (raw) => {
    let m: { type?: string; text?: string };
    try {
      m = JSON.parse(raw.toString());
    } catch {
      return;
    }
    if (m.type === 'client.resume') {
      ws.send(JSON.stringify({ type: 'chat.resume_boundary', data: { replayed_messages: 0, last_message_index: index, total_messages: index, resume_state: 'up_to_date' }, timestamp: now() }));
    } else if (m.type === 'user.input.submit') {
      const t = `t${turn++}`;
      const ev = (type: string, data: unknown) => ws.send(`{"type":"${type}","data":${JSON.stringify(data)},"timestamp":"${now()}","index":${++index}}`);
      ev('chat.text', { message_id: `${t}:user`, agent: 'user', role: 'user', delta: m.text, done: true, content: m.text });
      // The envelopes the runtime sends for the same reply: its writer coalesces a fast model's
      // deltas, so the 20 words are one event that also closes the message.
      const text = WORDS.join(' ');
      ev('chat.text', { message_id: `${t}:m1`, agent: 'bench', role: 'assistant', delta: text, done: true, content: text });
      ev('chat.usage_delta', { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, agent: 'bench', model: 'scripted' });
      ev('chat.usage_summary', { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, turns: turn });
      ev('chat.run_complete', { turn_id: t, status: 'completed' });
    }
  });
  ws.on('close', () => {
    set!.delete(ws);
    if (set!.size === 0) {
      byChannel.delete(channel);
      void sub.unsubscribe(channel).catch(() => undefined);
    }
  });
  ws.on('error', () => undefined);
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`bare ws listening on ${(server.address() as { port: number }).port}`);
});

const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close();
  sub.disconnect();
  setTimeout(() => process.exit(0), 200).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
