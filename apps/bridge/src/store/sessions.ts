import type { Redis } from 'ioredis';
import type { bridge } from '@tessera/contracts';
import type { Keys } from './keys';

/** A session as every instance sees it in Redis; the agent server runs on `instance`. */
export interface SessionRecord {
  id: string;
  reuseKey: string;
  /** Session tokens are derived from it (store/tokens.ts); the token itself is stored nowhere. */
  nonce: string;
  scadaUrl: string;
  instance: string;
  port: number;
  pid: number;
  opencodeUrl: string;
  password: string;
  opencodeSessionId: string | null;
  model: string | null;
  info: bridge.SessionInfo;
  startedAt: string;
  lastActivity: number;
}

function toHash(r: SessionRecord): Record<string, string> {
  return {
    id: r.id,
    reuseKey: r.reuseKey,
    nonce: r.nonce,
    scadaUrl: r.scadaUrl,
    instance: r.instance,
    port: String(r.port),
    pid: String(r.pid),
    opencodeUrl: r.opencodeUrl,
    password: r.password,
    opencodeSessionId: r.opencodeSessionId ?? '',
    model: r.model ?? '',
    info: JSON.stringify(r.info),
    startedAt: r.startedAt,
    lastActivity: String(r.lastActivity),
  };
}

function fromHash(h: Record<string, string>): SessionRecord | null {
  if (!h.id) return null;
  return {
    id: h.id,
    reuseKey: h.reuseKey,
    nonce: h.nonce,
    scadaUrl: h.scadaUrl,
    instance: h.instance,
    port: Number(h.port),
    pid: Number(h.pid),
    opencodeUrl: h.opencodeUrl,
    password: h.password,
    opencodeSessionId: h.opencodeSessionId || null,
    model: h.model || null,
    info: JSON.parse(h.info) as bridge.SessionInfo,
    startedAt: h.startedAt,
    lastActivity: Number(h.lastActivity),
  };
}

/** Touches are coalesced per session: at most one write per this many ms. */
const TOUCH_EVERY_MS = 250;

export class SessionStore {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly k: Keys,
  ) {}

  async get(id: string): Promise<SessionRecord | null> {
    return fromHash(await this.redis.hgetall(this.k.session(id)));
  }

  async idOf(reuseKey: string): Promise<string | null> {
    return this.redis.get(this.k.reuse(reuseKey));
  }

  async create(r: SessionRecord): Promise<void> {
    await this.redis.multi().hset(this.k.session(r.id), toHash(r)).set(this.k.reuse(r.reuseKey), r.id).sadd(this.k.sessions, r.id).exec();
  }

  async setInfo(id: string, info: bridge.SessionInfo): Promise<boolean> {
    // Only while the session exists: a PUT racing a close must not bring back half a session.
    const n = await this.redis.eval(`if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'info', ARGV[1]) return 1 end return 0`, 1, this.k.session(id), JSON.stringify(info));
    return n === 1;
  }

  /** Activity: API calls, socket opens and messages, agent events. */
  touch(id: string, now = Date.now()): void {
    const last = this.touched.get(id) ?? 0;
    if (now - last < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    void this.redis
      .eval(`if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'lastActivity', ARGV[1]) end return 0`, 1, this.k.session(id), String(now))
      .catch(() => undefined);
  }

  /** Removes the session (and its reuse mapping if it still points here); false when it was gone already. */
  async remove(r: Pick<SessionRecord, 'id' | 'reuseKey'>): Promise<boolean> {
    this.touched.delete(r.id);
    const n = await this.redis.eval(
      `local gone = redis.call('DEL', KEYS[1])
       if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
       redis.call('SREM', KEYS[3], ARGV[1])
       redis.call('DEL', KEYS[4])
       return gone`,
      4,
      this.k.session(r.id),
      this.k.reuse(r.reuseKey),
      this.k.sessions,
      this.k.subscribers(r.id),
      r.id,
    );
    return n === 1;
  }

  async all(): Promise<SessionRecord[]> {
    const ids = await this.redis.smembers(this.k.sessions);
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetall(this.k.session(id));
    const res = (await p.exec()) ?? [];
    return res.map(([, h]) => fromHash((h ?? {}) as Record<string, string>)).filter((r): r is SessionRecord => r !== null);
  }

  /** Open sockets on the session, on instances that are alive. */
  async subscriberCount(id: string): Promise<number> {
    const counts = await this.redis.hgetall(this.k.subscribers(id));
    const instances = Object.keys(counts).filter((i) => Number(counts[i]) > 0);
    if (instances.length === 0) return 0;
    const alive = await this.redis.mget(...instances.map((i) => this.k.alive(i)));
    return instances.reduce((n, inst, i) => n + (alive[i] ? Number(counts[inst]) : 0), 0);
  }

  async addSubscriber(id: string, instance: string, delta: number): Promise<void> {
    await this.redis.hincrby(this.k.subscribers(id), instance, delta);
  }
}
