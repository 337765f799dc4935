import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import type { Redis } from 'ioredis';
import type { bridge } from '@tessera/contracts';
import { errorSummary, QuotaExceeded, Unavailable, type Logger } from '@tessera/kit';
import type { AgentProcess } from '../agents/agent-process';
import type { Reaper } from '../agents/reaper';
import { SERVER_USER, type ServerPool } from '../agents/server-pool';
import { envelope, type SessionBus } from '../bus/session-bus';
import type { BridgeConfig } from '../config';
import { AgentEventStream, type AgentEvent } from '../relay/agent-events';
import type { ObservabilityRelay } from '../relay/observability';
import type { Keys } from '../store/keys';
import type { SessionRecord, SessionStore } from '../store/sessions';
import type { Owner } from './access';
import type { RequestBroker } from './requests';
import { newNonce, newPassword, normalizeAccessToken, normalizeScadaUrl, reuseKeyOf, sessionTokenOf } from './tokens';

/** Agent events that say nothing about the session (keep-alives): not activity, not relayed to observability. */
const QUIET = new Set(['server.connected', 'server.heartbeat']);

export interface Bootstrapped {
  record: SessionRecord;
  isNew: boolean;
}

/**
 * The bridge's sessions: one agent server per (SCADA, access token), started once however many
 * bootstraps race (a Redis lock across instances), closed on request, idleness, an operator's
 * stop or its crash; whatever closes it, sockets hear `session.closed` and pending requests end.
 */
export class BridgeSessions {
  private readonly inflight = new Map<string, Promise<Bootstrapped>>();
  private readonly streams = new Map<string, AgentEventStream>();
  /** Servers started whose session is not recorded yet: the cleanup pass must not take them for leftovers. */
  private readonly recording = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  /** The bridge's own URL for the agent server's MCP callback, known once it listens. */
  callbackUrl = '';

  constructor(
    private readonly config: BridgeConfig,
    private readonly redis: Redis,
    private readonly k: Keys,
    private readonly store: SessionStore,
    private readonly pool: ServerPool,
    private readonly reaper: Reaper,
    private readonly bus: SessionBus,
    private readonly requests: RequestBroker,
    private readonly relay: ObservabilityRelay,
    private readonly logger: Logger,
  ) {
    pool.onUnexpectedExit((id, proc) => void this.crashed(id, proc));
    bus.on((m) => {
      if (m.kind === 'close' && m.instance === config.instanceId) void this.close(m.sessionId, m.reason);
    });
  }

  get me(): string {
    return this.config.instanceId;
  }

  async bootstrap(owner: Owner, body: bridge.BootstrapBody): Promise<Bootstrapped> {
    const key = reuseKeyOf(owner, body.scadaUrl, body.accessToken);
    const existing = await this.reusable(key);
    if (existing) return { record: existing, isNew: false };
    const joined = this.inflight.get(key);
    // Only the caller that started the server hears isNew: true.
    if (joined) return { record: (await joined).record, isNew: false };
    const p = this.underLock(key, owner, body).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** The session of a key if its agent server still runs; a session of a dead instance is cleared here. */
  private async reusable(key: string): Promise<SessionRecord | null> {
    const id = await this.store.idOf(key);
    if (!id) return null;
    const rec = await this.store.get(id);
    if (!rec) return null;
    const gone = rec.instance === this.me ? !this.pool.get(id) : !(await this.reaper.isAlive(rec.instance));
    if (gone) {
      await this.closeState(rec, 'reaped');
      return null;
    }
    return rec;
  }

  private async underLock(key: string, owner: Owner, body: bridge.BootstrapBody): Promise<Bootstrapped> {
    const lockKey = this.k.lock(key);
    const token = randomUUID();
    const holdMs = this.config.OPENCODE_START_TIMEOUT_MS + 15_000;
    const deadline = Date.now() + holdMs;
    for (;;) {
      if ((await this.redis.set(lockKey, token, 'PX', holdMs, 'NX')) === 'OK') break;
      // Another instance starts this pair's server: take its session once it is there.
      await new Promise((r) => setTimeout(r, 50));
      const rec = await this.reusable(key);
      if (rec) return { record: rec, isNew: false };
      if (Date.now() > deadline) throw new Unavailable('another bootstrap of this session is still starting its agent server; try again');
    }
    try {
      const rec = await this.reusable(key);
      if (rec) return { record: rec, isNew: false };
      const id = randomUUID();
      await this.reserve(owner, id);
      try {
        return { record: await this.startSession(id, key, owner, body), isNew: true };
      } catch (e) {
        await this.store.release(owner, id).catch(() => undefined);
        throw e;
      }
    } finally {
      await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, lockKey, token).catch(() => undefined);
    }
  }

  /** A place within the user's and the app's quotas, or a 429 that names the limit. */
  private async reserve(owner: Owner, id: string): Promise<void> {
    const c = this.config;
    const perUser = c.OPENCODE_MAX_SERVERS_PER_USER;
    const perApp = c.OPENCODE_MAX_SERVERS_PER_APP;
    const r = await this.store.reserve(owner, id, { perUser, perApp, staleMs: c.OPENCODE_START_TIMEOUT_MS + 30_000 });
    if (r.ok) return;
    if (r.full === 'user') {
      throw new QuotaExceeded(`you hold ${r.held} agent servers, the most one user may (OPENCODE_MAX_SERVERS_PER_USER=${perUser}): close one (DELETE /api/session/{sessionId}) or wait for it to idle out`, { limit: 'OPENCODE_MAX_SERVERS_PER_USER', max: perUser, held: r.held });
    }
    throw new QuotaExceeded(`app "${owner.appId}" holds ${r.held} agent servers, the most one app may (OPENCODE_MAX_SERVERS_PER_APP=${perApp}); try again later`, { limit: 'OPENCODE_MAX_SERVERS_PER_APP', max: perApp, held: r.held });
  }

  private async startSession(id: string, reuseKey: string, owner: Owner, body: bridge.BootstrapBody): Promise<SessionRecord> {
    const c = this.config;
    const nonce = newNonce();
    const password = newPassword();
    const model = body.model ?? c.DEFAULT_MODEL ?? null;
    const scadaUrl = normalizeScadaUrl(body.scadaUrl);
    const callback = {
      BACKEND_BRIDGE_URL: this.callbackUrl,
      BRIDGE_SESSION_ID: id,
      BRIDGE_SESSION_TOKEN: sessionTokenOf(c.tokenSecret, id, nonce),
      SCADA_URL: scadaUrl,
      // The agent server's tools act for the host's user: the token lives in that process only.
      SCADA_ACCESS_TOKEN: normalizeAccessToken(body.accessToken),
    };
    const opencodeConfig = {
      $schema: 'https://opencode.ai/config.json',
      autoupdate: false,
      share: 'disabled',
      ...(model && { model }),
      ...(c.OPENCODE_CORS_ORIGINS.length && { server: { cors: c.OPENCODE_CORS_ORIGINS } }),
      ...(c.OPENCODE_MCP_COMMAND && {
        mcp: { tessera: { type: 'local', command: c.OPENCODE_MCP_COMMAND.split(/\s+/).filter(Boolean), environment: callback, enabled: true } },
      }),
    };
    const t0 = Date.now();
    this.recording.add(id);
    try {
      return await this.launch({ id, owner, reuseKey, nonce, password, model, scadaUrl, info: body.sessionInfo, t0 }, { ...callback, OPENCODE_CONFIG_CONTENT: JSON.stringify(opencodeConfig) });
    } finally {
      this.recording.delete(id);
    }
  }

  private async launch(
    plan: { id: string; owner: Owner; reuseKey: string; nonce: string; password: string; model: string | null; scadaUrl: string; info?: bridge.SessionInfoBody; t0: number },
    env: Record<string, string>,
  ): Promise<SessionRecord> {
    const { id, owner, reuseKey, nonce, password, model, scadaUrl, t0 } = plan;
    const c = this.config;
    const server = await this.pool.start(id, env, password);
    const host = c.OPENCODE_PUBLIC_HOST ?? c.OPENCODE_HOST;
    const now = new Date();
    const rec: SessionRecord = {
      id,
      appId: owner.appId,
      userId: owner.userId,
      reuseKey,
      nonce,
      scadaUrl,
      instance: this.me,
      port: server.port,
      pid: server.proc.pid,
      opencodeUrl: `http://${host}:${server.port}`,
      password,
      opencodeSessionId: await this.createAgentSession(server.port, password),
      model,
      info: { ...plan.info, updatedAt: now.toISOString() },
      startedAt: now.toISOString(),
      lastActivity: now.getTime(),
      used: false,
    };
    try {
      await this.store.create(rec);
    } catch (e) {
      await this.pool.stop(id);
      throw new Unavailable('cannot record the session (Redis); try again', { error: (e as Error).message });
    }
    this.follow(rec);
    this.logger.info('agent server started', { session_id: id, app_id: owner.appId, port: server.port, pid: server.proc.pid, key: reuseKey.slice(0, 12), ms: Date.now() - t0 });
    this.relay.send(rec, { event_type: 'session_start', session_id: id, session_name: `bridge ${new URL(scadaUrl).host}`, agent_name: 'opencode', event_id: `${id}:start` });
    return rec;
  }

  /** A session on the agent server for the host to prompt (null when the server has no such route: a stand-in). */
  private createAgentSession(port: number, password: string): Promise<string | null> {
    const body = Buffer.from('{}');
    return new Promise((resolve) => {
      const req = request(
        { host: this.config.OPENCODE_HOST, port, path: '/session', method: 'POST', agent: false, auth: `${SERVER_USER}:${password}`, timeout: 5_000, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            try {
              const id = (JSON.parse(text) as { id?: unknown }).id;
              resolve(res.statusCode === 200 && typeof id === 'string' ? id : null);
            } catch {
              resolve(null);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(null));
      req.end(body);
    });
  }

  /** The agent server's own events: to the session's sockets as `session.event`, and to observability. */
  private follow(rec: SessionRecord): void {
    const stream = new AgentEventStream({ host: this.config.OPENCODE_HOST, port: rec.port, auth: `${SERVER_USER}:${rec.password}` }, (e) => this.agentEvent(rec, e), this.logger);
    this.streams.set(rec.id, stream.open());
  }

  private agentEvent(rec: SessionRecord, e: AgentEvent): void {
    const id = rec.id;
    // The stream's keep-alive is the socket's business (ping/pong), not the client's.
    if (e.type === 'server.heartbeat') return;
    const wire = envelope('session.event', id, { type: e.type, payload: e.properties ?? null, source: 'opencode' });
    void this.bus.publish({ kind: 'envelope', sessionId: id, wire }).catch(() => undefined);
    if (QUIET.has(e.type)) return;
    this.store.touch(id);
    this.relay.send(rec, { event_type: e.type, session_id: id, agent_name: 'opencode', ...(e.id && { event_id: e.id }), content: [{ type: 'opencode.event', data: e.properties ?? null }] });
  }

  /** Closes a session wherever its agent server runs; false when there is no such session. */
  async close(id: string, reason: bridge.CloseReason): Promise<boolean> {
    const rec = await this.store.get(id);
    if (!rec) return false;
    if (rec.instance === this.me) await this.closeLocal(rec, reason);
    else if (await this.reaper.isAlive(rec.instance)) await this.closeRemote(rec, reason);
    else await this.closeState(rec, 'reaped');
    return true;
  }

  /**
   * Asks the instance that runs the server to close it, and returns once it did: a caller told
   * "closed" may bootstrap again at once and find its place in the quotas free.
   */
  private async closeRemote(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    await this.bus.publish({ kind: 'close', sessionId: rec.id, instance: rec.instance, reason });
    const deadline = Date.now() + this.config.SHUTDOWN_TIMEOUT_MS;
    while ((await this.store.get(rec.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }

  private async closeLocal(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    this.streams.get(rec.id)?.close();
    this.streams.delete(rec.id);
    await this.pool.stop(rec.id);
    await this.closeState(rec, reason);
  }

  /** The session's state goes; its sockets are told, its pending requests cancelled, observability told. */
  private async closeState(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    if (!(await this.store.remove(rec))) return;
    await this.requests.cancelAll(rec.id).catch((e) => this.logger.warn('requests not cancelled', { session_id: rec.id, error: errorSummary(e) }));
    const wire = envelope('session.closed', rec.id, { reason });
    await this.bus.publish({ kind: 'closed', sessionId: rec.id, reason, wire }).catch(() => undefined);
    this.relay.send(rec, { event_type: 'session_stop', session_id: rec.id, reason, event_id: `${rec.id}:stop` });
    this.logger.info('session closed', { session_id: rec.id, reason, port: rec.port });
  }

  private async crashed(id: string, proc: AgentProcess): Promise<void> {
    this.streams.get(id)?.close();
    this.streams.delete(id);
    this.logger.warn('agent server crashed', { session_id: id, pid: proc.pid });
    const rec = await this.store.get(id).catch(() => null);
    if (rec) await this.closeState(rec, 'crashed').catch((e) => this.logger.error('crashed session not cleared', { session_id: id, error: errorSummary(e) }));
  }

  /** Idle servers, servers whose session is gone, and what dead instances left. */
  async sweep(now = Date.now()): Promise<void> {
    for (const server of this.pool.list()) {
      if (this.recording.has(server.sessionId)) continue;
      const rec = await this.store.get(server.sessionId);
      if (!rec) {
        await this.pool.stop(server.sessionId);
        continue;
      }
      // Idle: nothing happened for a long while; unused: bootstrapped, then never asked for.
      const unused = !rec.used && now - Date.parse(rec.startedAt) >= this.config.OPENCODE_UNUSED_TIMEOUT;
      if (unused || now - rec.lastActivity >= this.config.OPENCODE_IDLE_TIMEOUT) await this.closeLocal(rec, 'idle');
    }
    const dead = await this.reaper.reap();
    for (const rec of await this.store.all()) {
      if (rec.instance !== this.me && (dead.has(rec.instance) || !(await this.reaper.isAlive(rec.instance)))) await this.closeState(rec, 'reaped');
    }
  }

  startSweeping(): void {
    this.timer = setInterval(
      () => void this.sweep().catch((e) => this.logger.warn('cleanup pass failed', { error: errorSummary(e) })),
      this.config.OPENCODE_CLEANUP_INTERVAL,
    );
    this.timer.unref();
  }

  /** Bridge shutdown: every agent server of this instance is stopped with its group, its session closed. */
  async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const recs = await Promise.all(this.pool.list().map((s) => this.store.get(s.sessionId).catch(() => null)));
    await Promise.all(
      this.pool.list().map(async (s, i) => {
        const rec = recs[i];
        if (rec) await this.closeLocal(rec, 'shutdown').catch(() => undefined);
        else await this.pool.stop(s.sessionId);
      }),
    );
    await this.pool.stopAll();
    await this.relay.flush();
  }
}
