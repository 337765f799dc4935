import type { RedisClient } from '@tessera/kit';
import type { bridge } from '@tessera/contracts';
import type { Keys } from './keys';

/** A session as every instance sees it in Redis; the agent server runs on `instance`. */
export interface SessionRecord {
  id: string;
  /** The owner: its app and user. Every route, the socket and the password are theirs (and their app's operators'). */
  appId: string;
  userId: string;
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
  /** A request or a socket has used it since its bootstrap (an unused one is closed sooner). */
  used: boolean;
}

function toHash(r: SessionRecord): Record<string, string> {
  return {
    id: r.id,
    appId: r.appId,
    userId: r.userId,
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
    used: r.used ? '1' : '',
  };
}

function fromHash(h: Record<string, string>): SessionRecord | null {
  if (!h.id) return null;
  return {
    id: h.id,
    appId: h.appId,
    userId: h.userId,
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
    used: h.used === '1',
  };
}

/** Touches are coalesced per session: at most one write per this many ms. */
const TOUCH_EVERY_MS = 250;

/**
 * Takes a place for a new agent server in its user's and its app's sets, or says which is full
 * (1: the user's, 2: the app's) and how many it holds. A place whose session never got recorded
 * (its start failed on an instance that died) is given back once it is older than a start can take.
 */
const RESERVE = `
local function prune(z)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[5])) do
    if redis.call('EXISTS', ARGV[6] .. id) == 0 then redis.call('ZREM', z, id) end
  end
end
prune(KEYS[1])
prune(KEYS[2])
local u = redis.call('ZCARD', KEYS[1])
if u >= tonumber(ARGV[3]) then return {1, u} end
local a = redis.call('ZCARD', KEYS[2])
if a >= tonumber(ARGV[4]) then return {2, a} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {0, 0}`;

export type Reservation = { ok: true } | { ok: false; full: 'user' | 'app'; held: number };

export class SessionStore {
  private readonly touched = new Map<string, number>();
  private readonly used = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
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

  /** A place for a new session of this owner, within both quotas (released by remove(), or release() if it never starts). */
  async reserve(owner: { appId: string; userId: string }, sessionId: string, limits: { perUser: number; perApp: number; staleMs: number }, now = Date.now()): Promise<Reservation> {
    const [code, held] = (await this.redis.eval(
      RESERVE,
      2,
      this.k.userServers(owner.appId, owner.userId),
      this.k.appServers(owner.appId),
      sessionId,
      String(now),
      String(limits.perUser),
      String(limits.perApp),
      String(now - limits.staleMs),
      this.k.session(''),
    )) as [number, number];
    return code === 0 ? { ok: true } : { ok: false, full: code === 1 ? 'user' : 'app', held };
  }

  async release(owner: { appId: string; userId: string }, sessionId: string): Promise<void> {
    await this.redis.multi().zrem(this.k.userServers(owner.appId, owner.userId), sessionId).zrem(this.k.appServers(owner.appId), sessionId).exec();
  }

  /**
   * Activity: API calls, socket opens and messages (`use`: the owner's side used it), agent events.
   * Writes are coalesced, except the first use, which is what keeps a session from the unused timeout.
   */
  touch(id: string, opts: { use?: boolean } = {}, now = Date.now()): void {
    const firstUse = opts.use === true && !this.used.has(id);
    const last = this.touched.get(id) ?? 0;
    if (!firstUse && now - last < TOUCH_EVERY_MS) return;
    this.touched.set(id, now);
    if (firstUse) this.used.add(id);
    void this.redis
      .eval(
        `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'lastActivity', ARGV[1]) if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'used', '1') end end return 0`,
        1,
        this.k.session(id),
        String(now),
        firstUse ? '1' : '0',
      )
      .catch(() => undefined);
  }

  /** Removes the session (its reuse mapping if it still points here, its places in the quotas); false when it was gone already. */
  async remove(r: Pick<SessionRecord, 'id' | 'reuseKey' | 'appId' | 'userId'>): Promise<boolean> {
    this.touched.delete(r.id);
    this.used.delete(r.id);
    const n = await this.redis.eval(
      `local gone = redis.call('DEL', KEYS[1])
       if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
       redis.call('SREM', KEYS[3], ARGV[1])
       redis.call('DEL', KEYS[4])
       redis.call('ZREM', KEYS[5], ARGV[1])
       redis.call('ZREM', KEYS[6], ARGV[1])
       return gone`,
      6,
      this.k.session(r.id),
      this.k.reuse(r.reuseKey),
      this.k.sessions,
      this.k.subscribers(r.id),
      this.k.userServers(r.appId, r.userId),
      this.k.appServers(r.appId),
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
