/** Node hosts for the client core: a Map as storage, `ws` as the socket, tokens signed like the runtime expects. */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { ChatConnection, TesseraApi, type ChatEvent, type ChatIds, type Host, type HostStorage, type SocketFactory, type TimelineEvent } from '../src';
import { JWT_SECRET, type RuntimeProcess } from './runtime-process';

export function memoryStorage(): HostStorage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

export function token(sub: string, apps = ['app1']): Promise<string> {
  return new SignJWT({ sub, apps }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET));
}

/**
 * `ws` sockets the test can reach: `current()` is the client's live one, terminated to drop the
 * connection; `frames` is every frame the client sent, with the number of the socket it went on.
 */
export function droppableSockets() {
  const all: WebSocket[] = [];
  const frames: { socket: number; frame: Record<string, unknown> }[] = [];
  /** Called with each frame the client sends; return true to cut the connection right after it. */
  let cutAfter: ((frame: Record<string, unknown>) => boolean) | null = null;
  /** Called with each frame the client sends; a number holds it (and every later frame of that socket) back that many ms: a slow network. */
  let holdBack: ((frame: Record<string, unknown>) => number) | null = null;
  class Droppable extends WebSocket {
    private readonly n = all.length;
    /** Set once a frame was held back: later frames queue behind it, in order. */
    private held: Promise<void> | null = null;
    constructor(url: string) {
      super(url);
      all.push(this);
    }
    override send(data: string): void {
      const frame = JSON.parse(data) as Record<string, unknown>;
      frames.push({ socket: this.n, frame });
      const go = () => {
        if (this.readyState !== this.OPEN) return;
        super.send(data);
        if (cutAfter?.(frame)) this.terminate();
      };
      const ms = holdBack?.(frame) ?? 0;
      if (ms > 0) this.held = (this.held ?? Promise.resolve()).then(() => new Promise((r) => setTimeout(r, ms)));
      if (this.held) void this.held.then(go);
      else go();
    }
  }
  return {
    ctor: Droppable as unknown as SocketFactory,
    all,
    frames,
    /** The `client.resume` frames sent so far. */
    resumes: () => frames.filter((f) => f.frame.type === 'client.resume'),
    current: () => all.at(-1),
    cutAfter: (f: typeof cutAfter) => void (cutAfter = f),
    holdBack: (f: typeof holdBack) => void (holdBack = f),
  };
}

export function hostFor(rt: RuntimeProcess, user: string, storage: HostStorage, WS: SocketFactory = WebSocket as unknown as SocketFactory): Host {
  return { storage, getAccessToken: () => token(user), httpBaseUrl: rt.url, wsBaseUrl: rt.wsUrl, WebSocket: WS };
}

/** A new chat of `user` on the runtime, started as an app starts one. */
export async function newChat(rt: RuntimeProcess, user: string, workflowName = 'assistant'): Promise<ChatIds> {
  const api = new TesseraApi(hostFor(rt, user, memoryStorage()));
  const chat = await api.startChat({ appId: 'app1', userId: user, workflowName, forceNew: true });
  return { appId: 'app1', userId: user, chatId: chat.chat_id, workflowName };
}

/** A connection with a record of what it applied. */
export function record(conn: ChatConnection) {
  const timeline: TimelineEvent[] = [];
  const all: ChatEvent[] = [];
  conn.on((e) => {
    all.push(e);
    if (e.kind === 'timeline') timeline.push(e.event);
  });
  return { conn, timeline, all };
}

export async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const completed = (tl: TimelineEvent[]) => tl.filter((e) => e.type === 'chat.run_complete').length;

/** The visible conversation: one line per finished message, one per other event (usage aside). */
export function transcript(tl: TimelineEvent[]): string[] {
  const texts = new Map<string, string>();
  const out: string[] = [];
  for (const e of tl) {
    if (e.type === 'chat.text') {
      texts.set(e.data.message_id, (texts.get(e.data.message_id) ?? '') + e.data.delta);
      if (e.data.done) out.push(`${e.data.role}:${e.data.agent}: ${texts.get(e.data.message_id)}`);
    } else if (e.type !== 'chat.usage_delta' && e.type !== 'chat.usage_summary') out.push(e.type);
  }
  return out;
}

/** Everything the runtime holds for a chat, read by a fresh client (empty storage: resumes from -1). */
export async function replayAll(rt: RuntimeProcess, ids: ChatIds): Promise<TimelineEvent[]> {
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage()), ids));
  r.conn.connect();
  await waitFor(() => r.all.some((e) => e.kind === 'control' && e.event.type === 'chat.resume_boundary'), 'replay');
  r.conn.close();
  return r.timeline;
}
