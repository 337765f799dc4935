import { randomUUID } from 'node:crypto';
import type { RedisClient } from '@tessera/kit';
import type { bridge } from '@tessera/contracts';
import { Unavailable, type Logger } from '@tessera/kit';
import { AgentLauncher } from '../agents/agent-launcher';
import type { Reaper } from '../agents/reaper';
import type { ServerPool } from '../agents/server-pool';
import type { SessionBus } from '../bus/session-bus';
import type { BridgeConfig } from '../config';
import type { ObservabilityRelay } from '../relay/observability';
import { SessionEventRelay } from '../relay/session-events';
import { BootstrapLock } from '../store/bootstrap-lock';
import type { Keys } from '../store/keys';
import type { SessionRecord, SessionStore } from '../store/sessions';
import type { Owner } from './access';
import type { RequestBroker } from './requests';
import { reserveServer } from './server-quotas';
import { SessionClosing } from './session-closing';
import { SessionSweep } from './session-sweep';
import { newNonce, newPassword, normalizeScadaUrl, reuseKeyOf } from './tokens';

/** What the sessions are built from (services.ts). */
export interface SessionDeps {
  config: BridgeConfig;
  redis: RedisClient;
  keys: Keys;
  store: SessionStore;
  pool: ServerPool;
  reaper: Reaper;
  bus: SessionBus;
  requests: RequestBroker;
  relay: ObservabilityRelay;
  logger: Logger;
}

export interface Bootstrapped {
  record: SessionRecord;
  isNew: boolean;
}

/**
 * The bridge's sessions: one agent server per (app, user, SCADA, access token), started once
 * however many bootstraps race (a lock across instances), closed on request, idleness, an
 * operator's stop or its crash (SessionClosing); whatever closes it, sockets hear `session.closed`
 * and pending requests end.
 */
export class BridgeSessions {
  readonly launcher: AgentLauncher;
  private readonly lock: BootstrapLock;
  private readonly events: SessionEventRelay;
  private readonly closing: SessionClosing;
  private readonly sweeper: SessionSweep;
  private readonly inflight = new Map<string, Promise<Bootstrapped>>();
  /** Servers started whose session is not recorded yet: the sweep must not take them for leftovers. */
  private readonly recording = new Set<string>();

  constructor(private readonly d: SessionDeps) {
    this.launcher = new AgentLauncher(d.config, d.pool);
    this.lock = new BootstrapLock(d.redis, d.keys);
    this.events = new SessionEventRelay(d);
    this.closing = new SessionClosing({ ...d, events: this.events });
    this.sweeper = new SessionSweep({ ...d, closing: this.closing, events: this.events, isRecording: (id) => this.recording.has(id) });
    d.pool.onUnexpectedExit((id, proc) => void this.closing.crashed(id, proc));
    d.bus.on((m) => {
      if (m.kind === 'close' && m.instance === d.config.instanceId) void this.close(m.sessionId, m.reason);
    });
  }

  async bootstrap(owner: Owner, body: bridge.BootstrapBody): Promise<Bootstrapped> {
    const key = reuseKeyOf(owner, body.scadaUrl, body.accessToken);
    const existing = await this.reusable(key);
    if (existing) return { record: existing, isNew: false };
    const joined = this.inflight.get(key);
    // Only the caller that started the server hears isNew: true.
    if (joined) return { record: (await joined).record, isNew: false };
    const theirs = async () => {
      // Another instance starts this pair's server: take its session once it is there.
      const rec = await this.reusable(key);
      return rec && { record: rec, isNew: false };
    };
    const p = this.lock
      .run(key, this.d.config.OPENCODE_START_TIMEOUT_MS + 15_000, async () => (await theirs()) ?? { record: await this.create(key, owner, body), isNew: true }, theirs)
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Closes a session wherever its agent server runs; false when there is no such session. */
  close(id: string, reason: bridge.CloseReason): Promise<boolean> {
    return this.closing.close(id, reason);
  }

  /** Idle servers, servers whose session is gone, and what dead instances left. */
  sweep(now = Date.now()): Promise<void> {
    return this.sweeper.run(now);
  }

  startSweeping(): void {
    this.sweeper.start();
  }

  /** Bridge shutdown: every agent server of this instance is stopped with its group, its session closed. */
  async shutdown(): Promise<void> {
    const { pool, store, relay } = this.d;
    this.sweeper.stop();
    const recs = await Promise.all(pool.list().map((s) => store.get(s.sessionId).catch(() => null)));
    await Promise.all(
      pool.list().map(async (s, i) => {
        const rec = recs[i];
        if (rec) await this.closing.closeLocal(rec, 'shutdown').catch(() => undefined);
        else await pool.stop(s.sessionId);
      }),
    );
    await pool.stopAll();
    await relay.flush();
  }

  /** The session of a key if its agent server still runs; a session of a dead instance is cleared here. */
  private async reusable(key: string): Promise<SessionRecord | null> {
    const { store, pool, reaper, config } = this.d;
    const id = await store.idOf(key);
    if (!id) return null;
    const rec = await store.get(id);
    if (!rec) return null;
    const gone = rec.instance === config.instanceId ? !pool.get(id) : !(await reaper.isAlive(rec.instance));
    if (gone) {
      await this.closing.closeState(rec, 'reaped');
      return null;
    }
    return rec;
  }

  /** A new session under the lock: a place in the quotas, its agent server, its record, its events followed. */
  private async create(reuseKey: string, owner: Owner, body: bridge.BootstrapBody): Promise<SessionRecord> {
    const id = randomUUID();
    await reserveServer(this.d.config, this.d.store, owner, id);
    this.recording.add(id);
    try {
      return await this.start(id, reuseKey, owner, body);
    } catch (e) {
      await this.d.store.release(owner, id).catch(() => undefined);
      throw e;
    } finally {
      this.recording.delete(id);
    }
  }

  private async start(id: string, reuseKey: string, owner: Owner, body: bridge.BootstrapBody): Promise<SessionRecord> {
    const { config, store, pool, relay, logger } = this.d;
    const t0 = Date.now();
    const nonce = newNonce();
    const password = newPassword();
    const model = body.model ?? config.DEFAULT_MODEL ?? null;
    const scadaUrl = normalizeScadaUrl(body.scadaUrl);
    const agent = await this.launcher.launch({ sessionId: id, nonce, password, model, scadaUrl, accessToken: body.accessToken });
    const { port, proc } = agent.server;
    const now = new Date();
    const rec: SessionRecord = {
      id,
      appId: owner.appId,
      userId: owner.userId,
      reuseKey,
      nonce,
      scadaUrl,
      instance: config.instanceId,
      port,
      pid: proc.pid,
      opencodeUrl: agent.url,
      password,
      opencodeSessionId: agent.opencodeSessionId,
      model,
      info: { ...body.sessionInfo, updatedAt: now.toISOString() },
      startedAt: now.toISOString(),
      lastActivity: now.getTime(),
      used: false,
    };
    try {
      await store.create(rec);
    } catch (e) {
      await pool.stop(id);
      throw new Unavailable('cannot record the session (RedisClient); try again', { error: (e as Error).message });
    }
    this.events.follow(rec, agent.client);
    logger.info('agent server started', { session_id: id, app_id: owner.appId, port, pid: proc.pid, key: reuseKey.slice(0, 12), ms: Date.now() - t0 });
    relay.send(rec, { event_type: 'session_start', session_id: id, session_name: `bridge ${new URL(scadaUrl).host}`, agent_name: 'opencode', event_id: `${id}:start` });
    return rec;
  }
}
