/**
 * WebSocket clients of the benchmarks, speaking the runtime's client protocol (document 003):
 * chat_meta on connect, `client.resume` with the last applied index, timeline envelopes with
 * `index`. A FeedClient keeps what it applied across reconnects, so that lost, duplicated and
 * out-of-order events are counted by index, per chat.
 */
import WebSocket from 'ws';

export interface Envelope {
  type: string;
  data: any;
  index?: number;
}

/** Milliseconds since the epoch with sub-ms precision, comparable across processes. */
export const wallNow = () => performance.timeOrigin + performance.now();

export interface FeedSink {
  /** Every timeline event applied (first time only), with its delivery latency when it carried `sent_at`. */
  event(latencyMs: number | undefined): void;
}

export class FeedClient {
  /** The chat's last index when this client first connected: it expects everything after. */
  base = -1;
  /** Highest index applied. */
  last = 0;
  received = 0;
  duplicates = 0;
  outOfOrder = 0;
  errors = 0;
  /** Closes the client did not ask for (server closed, network). */
  unexpectedCloses = 0;
  connects = 0;
  /** Which of `urls` it is connected to now. */
  at: number;
  ws: WebSocket | null = null;
  live = false;
  private seen = new Uint8Array(256);
  private waiter: { type: string; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private closing = false;

  constructor(
    readonly chat: string,
    private readonly urls: string[],
    home: number,
    private readonly sink: FeedSink,
  ) {
    this.at = home;
  }

  /**
   * First connection: wait for chat_meta, remember its last_index as the base, then
   * `client.resume` from there (live delivery starts) and wait for the boundary.
   */
  async open(timeoutMs = 20_000): Promise<void> {
    const ws = this.connect(this.at);
    const meta = await this.wait('chat_meta', timeoutMs, ws);
    if (this.base < 0) {
      this.base = meta.data.last_index as number;
      this.last = this.base;
    }
    const boundary = this.wait('chat.resume_boundary', timeoutMs, ws);
    ws.send(JSON.stringify({ type: 'client.resume', lastClientIndex: this.last }));
    await boundary;
    this.live = true;
  }

  /** Reconnect (to instance `to`) and resume at once, from the last applied index. */
  async reconnect(to: number, timeoutMs = 20_000): Promise<void> {
    this.at = to;
    const ws = this.connect(to);
    const boundary = this.wait('chat.resume_boundary', timeoutMs, ws);
    ws.once('open', () => ws.send(JSON.stringify({ type: 'client.resume', lastClientIndex: this.last })));
    await boundary;
    this.live = true;
  }

  /** Drop the connection abruptly (no close handshake), as a lost network would. */
  drop(): void {
    this.live = false;
    this.closing = true;
    this.ws?.terminate();
    this.ws = null;
  }

  close(): Promise<void> {
    this.live = false;
    this.closing = true;
    const ws = this.ws;
    this.ws = null;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((res) => {
      const t = setTimeout(() => {
        ws.terminate();
        res();
      }, 3_000);
      ws.once('close', () => {
        clearTimeout(t);
        res();
      });
      ws.close();
    });
  }

  /** Indexes in (from, to] this client never applied. */
  missing(from: number, to: number): number {
    let n = 0;
    for (let i = Math.max(from, this.base) + 1; i <= to; i++) if (!this.has(i)) n++;
    return n;
  }

  private has(index: number): boolean {
    const k = index - this.base - 1;
    return k >= 0 && k < this.seen.length && this.seen[k] === 1;
  }

  private mark(index: number): boolean {
    const k = index - this.base - 1;
    if (k < 0) return false;
    if (k >= this.seen.length) {
      let n = this.seen.length;
      while (n <= k) n *= 2;
      const grown = new Uint8Array(n);
      grown.set(this.seen);
      this.seen = grown;
    }
    if (this.seen[k] === 1) return false;
    this.seen[k] = 1;
    return true;
  }

  private connect(to: number): WebSocket {
    this.closing = false;
    const ws = new WebSocket(this.urls[to], { perMessageDeflate: false });
    this.ws = ws;
    this.connects++;
    ws.on('message', (d) => this.onMessage(d.toString()));
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.live = false;
      if (this.waiter) {
        clearTimeout(this.waiter.timer);
        this.waiter.reject(new Error(`socket of ${this.chat} closed while waiting for ${this.waiter.type}`));
        this.waiter = null;
      }
      if (!this.closing) {
        // Not asked for: a real client reconnects and resumes, so does this one.
        this.unexpectedCloses++;
        setTimeout(() => void this.reconnect(this.at).catch(() => undefined), 100);
      }
    });
    return ws;
  }

  private wait(type: string, timeoutMs: number, ws: WebSocket): Promise<Envelope> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${this.chat}: no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = { type, resolve: resolve as () => void, reject, timer };
      void ws;
    });
  }

  private onMessage(text: string): void {
    let m: Envelope;
    try {
      m = JSON.parse(text) as Envelope;
    } catch {
      this.errors++;
      return;
    }
    if (m.index !== undefined) {
      if (this.base < 0) return; // before chat_meta of the first connection: not counted
      if (!this.mark(m.index)) {
        this.duplicates++;
        return;
      }
      if (m.index !== this.last + 1) this.outOfOrder++;
      if (m.index > this.last) this.last = m.index;
      this.received++;
      const sent = m.data?.sent_at;
      this.sink.event(typeof sent === 'number' ? wallNow() - sent : undefined);
      return;
    }
    if (m.type === 'chat.error') this.errors++;
    if (this.waiter && this.waiter.type === m.type) {
      const w = this.waiter;
      this.waiter = null;
      clearTimeout(w.timer);
      (w.resolve as (m: Envelope) => void)(m);
    }
  }
}

export interface TurnTimes {
  /** chat_meta came: the socket is ready for its first message. */
  meta(): void;
  /** Every other message, before it is timed. */
  message(m: Envelope): void;
  /** From sending a message to the turn's first assistant text. */
  firstText(ms: number): void;
  /** From sending a message to its turn's chat.run_complete. */
  complete(ms: number): void;
  /** The last of the turns is complete. */
  last(): void;
}

/**
 * A chat socket used as a person uses it: `turns` messages (`turn 0`, `turn 1`, …), each sent by
 * `send` or, after the first, once the previous turn's chat.run_complete came, and not before
 * `dueAt(turn)` when given; each turn timed from its sending.
 */
export function typeTurns(ws: WebSocket, turns: number, on: TurnTimes, dueAt?: (turn: number) => number): { send: () => void } {
  let turn = 0;
  let sentAt = 0;
  let first = true;
  const sendNow = () => {
    sentAt = performance.now();
    first = true;
    ws.send(JSON.stringify({ type: 'user.input.submit', text: `turn ${turn}` }));
  };
  // Paced (dueAt: the earliest performance.now() for a turn): a turn whose time has not come waits for it.
  const send = () => {
    const wait = dueAt ? dueAt(turn) - performance.now() : 0;
    if (wait > 0) setTimeout(sendNow, wait);
    else sendNow();
  };
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Envelope;
    if (m.type === 'chat_meta') return on.meta();
    on.message(m);
    if (m.type === 'chat.text' && first && m.data.role === 'assistant') {
      first = false;
      on.firstText(performance.now() - sentAt);
    } else if (m.type === 'chat.run_complete') {
      on.complete(performance.now() - sentAt);
      if (++turn < turns) send();
      else on.last();
    }
  });
  return { send };
}
