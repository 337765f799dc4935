import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@tessera/kit';
import { bridge } from '@tessera/contracts';
import { Conflict, NotFound } from '@tessera/kit';
import { envelope, type SessionBus } from '../bus/session-bus';
import type { Keys } from '../store/keys';

export const clampTimeout = (ms: number | undefined) => Math.min(bridge.REQUEST_TIMEOUT.max, Math.max(bridge.REQUEST_TIMEOUT.min, ms ?? bridge.REQUEST_TIMEOUT.default));

/** Kept this long past its expiry so that a late poll or response gets a clear answer. */
const KEEP_AFTER_MS = 5 * 60_000;

/** pending → resolved | timeout | cancelled, once: whoever moves it first wins, on any instance. */
const SETTLE = `
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return -1 end
if s ~= 'pending' then return 0 end
if ARGV[1] == 'resolved' and ARGV[4] ~= '' and redis.call('HGET', KEYS[1], 'sessionId') ~= ARGV[4] then return -1 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'response', ARGV[2], 'respondedAt', ARGV[3])
return 1`;

/**
 * Request/response events: a request is published to the session's sockets as `hub.request`
 * and kept in Redis; a response posted to any instance settles it there and the `settled`
 * message wakes the waiter wherever it waits.
 */
export class RequestBroker {
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly k: Keys,
    private readonly bus: SessionBus,
  ) {
    bus.on((m) => {
      if (m.kind !== 'settled') return;
      const set = this.waiters.get(m.requestId);
      if (set) for (const wake of set) wake();
    });
  }

  async open(sessionId: string, body: bridge.RequestBody): Promise<{ requestId: string; expiresAt: number }> {
    const timeoutMs = clampTimeout(body.timeoutMs);
    const requestId = randomUUID();
    const expiresAt = Date.now() + timeoutMs;
    await this.redis
      .multi()
      .hset(this.k.request(requestId), { sessionId, status: 'pending', expiresAt: String(expiresAt) })
      .pexpire(this.k.request(requestId), timeoutMs + KEEP_AFTER_MS)
      .sadd(this.k.requests(sessionId), requestId)
      .pexpire(this.k.requests(sessionId), bridge.REQUEST_TIMEOUT.max + KEEP_AFTER_MS)
      .exec();
    const payload = { type: 'hub.request', payload: { requestId, type: body.type, payload: body.payload ?? null, timeoutMs, expiresAt: new Date(expiresAt).toISOString() } };
    await this.bus.publish({ kind: 'envelope', sessionId, wire: envelope('session.event', sessionId, payload) });
    return { requestId, expiresAt };
  }

  /** Waits until the request is settled or `untilMs` (epoch) passes; a request past its expiry is timed out here. */
  async wait(requestId: string, untilMs: number): Promise<bridge.RequestStatusReply> {
    let wake!: () => void;
    const woken = new Promise<void>((r) => (wake = r));
    let set = this.waiters.get(requestId);
    if (!set) this.waiters.set(requestId, (set = new Set()));
    set.add(wake);
    try {
      for (;;) {
        const s = await this.status(requestId);
        if (s.status !== 'pending') return s;
        const left = untilMs - Date.now();
        if (left <= 0) return s;
        let t: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((r) => (t = setTimeout(r, Math.min(left, Date.parse(s.expiresAt) - Date.now() + 5))))]);
        clearTimeout(t);
      }
    } finally {
      set.delete(wake);
      if (set.size === 0) this.waiters.delete(requestId);
    }
  }

  async status(requestId: string, sessionId?: string): Promise<bridge.RequestStatusReply> {
    const h = await this.redis.hgetall(this.k.request(requestId));
    if (!h.status || (sessionId !== undefined && h.sessionId !== sessionId)) throw new NotFound(`no request "${requestId}" in this session`);
    const expiresAt = Number(h.expiresAt);
    if (h.status === 'pending' && Date.now() >= expiresAt) {
      await this.settle(requestId, 'timeout');
      return this.status(requestId, sessionId);
    }
    return {
      sessionId: h.sessionId,
      requestId,
      status: h.status as bridge.RequestStatus,
      expiresAt: new Date(expiresAt).toISOString(),
      ...(h.status === 'resolved' && { response: JSON.parse(h.response) as unknown, respondedAt: h.respondedAt }),
    };
  }

  async respond(sessionId: string, requestId: string, response: unknown): Promise<void> {
    const current = await this.status(requestId, sessionId);
    if (current.status !== 'pending') throw new Conflict(`request "${requestId}" is ${current.status === 'resolved' ? 'already answered' : current.status === 'timeout' ? 'timed out' : 'cancelled'}`, { status: current.status });
    const r = await this.settle(requestId, 'resolved', response, sessionId);
    if (r === -1) throw new NotFound(`no request "${requestId}" in this session`);
    if (r === 0) {
      const now = await this.status(requestId, sessionId);
      throw new Conflict(`request "${requestId}" is ${now.status === 'resolved' ? 'already answered' : now.status}`, { status: now.status });
    }
  }

  /** A closed session's requests are cancelled: their waiters answer 409. */
  async cancelAll(sessionId: string): Promise<number> {
    const ids = await this.redis.smembers(this.k.requests(sessionId));
    let n = 0;
    for (const id of ids) if ((await this.settle(id, 'cancelled')) === 1) n++;
    await this.redis.del(this.k.requests(sessionId));
    return n;
  }

  private async settle(requestId: string, status: 'resolved' | 'timeout' | 'cancelled', response: unknown = null, sessionId = ''): Promise<number> {
    const r = (await this.redis.eval(SETTLE, 1, this.k.request(requestId), status, JSON.stringify(response ?? null), new Date().toISOString(), sessionId)) as number;
    if (r === 1) await this.bus.publish({ kind: 'settled', requestId });
    return r;
  }
}
