import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@tessera/kit';
import { z } from 'zod';

/** A session nobody used for this long is gone (its record and its resumable events expire). */
export const MCP_IDLE_MS = 30 * 60_000;
/** Sessions one user may hold at once; initializing one more ends the one used least recently. */
export const MCP_SESSIONS_PER_USER = 32;

/** What every runtime instance needs to serve a session's next request: whose it is and what was agreed. */
export const McpSessionRecord = z.object({
  sub: z.string(),
  app_id: z.string(),
  protocol_version: z.string(),
  client_capabilities: z.record(z.string(), z.unknown()),
  client_info: z.object({ name: z.string(), version: z.string() }).loose(),
  created_at: z.number(),
});
export type McpSessionRecord = z.infer<typeof McpSessionRecord>;

/**
 * MCP sessions (`Mcp-Session-Id`) in Redis, so that any runtime instance serves any session: the
 * record names the user and app (another user's id is no session at all), expires after
 * MCP_IDLE_MS without use, and each user holds at most MCP_SESSIONS_PER_USER.
 */
export class McpSessions {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly idleMs = MCP_IDLE_MS,
    private readonly perUser = MCP_SESSIONS_PER_USER,
  ) {}

  /**
   * A session's record, under its user's hash tag: the transactions below change it with the
   * user's set, which a Redis Cluster allows only within one slot. Another user's id names no key.
   */
  private key(id: string, sub: string): string {
    return `${this.prefix}:mcp:{${sub}}:session:${id}`;
  }

  private userKey(sub: string): string {
    return `${this.prefix}:mcp:{${sub}}:sessions`;
  }

  /** A new session; the user's least recently used ones beyond the bound end. */
  async create(record: Omit<McpSessionRecord, 'created_at'>): Promise<string> {
    const id = randomUUID();
    const now = Date.now();
    const users = this.userKey(record.sub);
    await this.redis
      .multi()
      .set(this.key(id, record.sub), JSON.stringify({ ...record, created_at: now }), 'PX', this.idleMs)
      .zremrangebyscore(users, '-inf', now - this.idleMs)
      .zadd(users, now, id)
      .pexpire(users, this.idleMs)
      .exec();
    const extra = (await this.redis.zcard(users)) - this.perUser;
    if (extra > 0) {
      const oldest = await this.redis.zrange(users, 0, extra - 1);
      const evicted = oldest.filter((o) => o !== id);
      if (evicted.length > 0) await this.redis.multi().zrem(users, ...evicted).del(...evicted.map((e) => this.key(e, record.sub))).exec();
    }
    return id;
  }

  /** The session, if it exists and is this user's in this app (its idle clock starts again); otherwise null. */
  async use(id: string, sub: string, appId: string): Promise<McpSessionRecord | null> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return null;
    const raw = await this.redis.get(this.key(id, sub));
    const parsed = raw === null ? undefined : McpSessionRecord.safeParse(JSON.parse(raw));
    if (!parsed?.success || parsed.data.sub !== sub || parsed.data.app_id !== appId) return null;
    await this.redis.multi().pexpire(this.key(id, sub), this.idleMs).zadd(this.userKey(sub), Date.now(), id).pexpire(this.userKey(sub), this.idleMs).exec();
    return parsed.data;
  }

  async end(id: string, sub: string): Promise<void> {
    await this.redis.multi().del(this.key(id, sub)).zrem(this.userKey(sub), id).exec();
  }
}
