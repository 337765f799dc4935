import { LRUCache } from 'lru-cache';
import { agents } from '@tessera/contracts';
import type { z } from 'zod';
import { BadGateway, channelOf, SERVICE_KEY_HEADER, ServiceClient, UnexpectedStatus, Unreachable, type BusSubscriber, type Logger } from '@tessera/kit';
import { BlueprintRefusal, EngineErrorCode } from '../engine/run-turn';

/** A turn waits this long for the agent manager before it fails with BLUEPRINT_UNAVAILABLE. */
const FETCH_TIMEOUT_MS = 5_000;
/** Blueprints kept per worker process; the least recently used goes first. */
const MAX_CACHED = 1_000;

/** What the cache holds: the agent, or that the app has none of that name (lru-cache holds no null). */
type Entry = { agent: agents.Agent | null };

/** The cache's key: a blueprint is an app's (the same name in two apps is two blueprints). */
const keyOf = (app: string, name: string) => `${app}\u0000${name}`;
const appOf = (key: string) => key.slice(0, key.indexOf('\u0000'));

/**
 * Blueprints of the agent manager (`AGENTS_URL`, read with the service key for the chat's app),
 * cached per worker process by app and name (lru-cache: one request per blueprint however many
 * turns ask at once). An announcement on `Channel.agentChanges` drops that app's copy of the
 * agent, so an edit reaches the next turn; a request under way when it comes still answers its
 * turn but is not cached. The TTL bounds staleness when announcements are lost (Redis down). A
 * copy past its TTL that no announcement dropped still serves while the agent manager does not
 * answer.
 */
export class BlueprintSource {
  private readonly cache: LRUCache<string, Entry>;
  private readonly http: ServiceClient;

  constructor(
    baseUrl: string,
    private readonly serviceKey: string,
    ttlMs: number,
    private readonly logger: Logger,
    /** The cache's clock (tests move it); `performance` by default. */
    clock?: { now(): number },
  ) {
    this.http = new ServiceClient(baseUrl, 'agent manager', { timeoutMs: FETCH_TIMEOUT_MS });
    this.cache = new LRUCache<string, Entry>({
      max: MAX_CACHED,
      ttl: ttlMs,
      ttlResolution: 0,
      perf: clock,
      fetchMethod: (key) => this.fetchEntry(key),
      // A drop during the request: its turn gets what was read, the cache does not keep it.
      ignoreFetchAbort: true,
      // A failed request leaves the copy past its TTL in place, for `entry` to fall back on.
      noDeleteOnFetchRejection: true,
    });
  }

  /** Follows the announcements (`Channel.agentChanges`); after a reconnect everything is dropped, since some may have been missed. */
  async listen(bus: BusSubscriber): Promise<void> {
    await bus.subscribe(channelOf('agentChanges'), {
      // No app: an agent manager of before apps; the name goes in every app.
      onMessage: (change) => this.drop(change.name, change.app_id),
      onResync: () => this.drop(),
    });
  }

  /** The system prompt of the app's blueprint; refuses (BlueprintRefusal) an inactive, missing or unreachable one. */
  readonly resolve = async (name: string, app: string): Promise<string> => {
    const { agent } = await this.entry(app, name);
    if (!agent) throw new BlueprintRefusal(EngineErrorCode.BlueprintNotFound, `blueprint "${name}" does not exist in the agent manager`);
    if (agent.status !== 'active')
      throw new BlueprintRefusal(EngineErrorCode.BlueprintInactive, `blueprint "${name}" is inactive in the agent manager: new turns are refused until an operator activates it`);
    return agent.system_prompt;
  };

  /** The app's agent as the agent manager has it now (no cache: a chat's start sees an operator's change at once); null when the app has none of that name. */
  readonly lookup = (app: string, name: string): Promise<agents.Agent | null> => this.request(app, name);

  /** Every agent of the app, as the agent manager has it now. */
  async list(app: string): Promise<agents.Agent[]> {
    return (await this.read(app, '/agents', agents.AgentsReply, 'the agents', []))!;
  }

  /** Drops the app's copy of `name`; without an app, `name` in every app; without either, everything. */
  drop(name?: string, app?: string): void {
    if (name === undefined) this.cache.clear();
    else if (app !== undefined) this.cache.delete(keyOf(app, name));
    else for (const key of [...this.cache.keys()]) if (key === keyOf(appOf(key), name)) this.cache.delete(key);
  }

  private async entry(app: string, name: string): Promise<Entry> {
    const key = keyOf(app, name);
    try {
      const entry = await this.cache.fetch(key);
      if (entry) return entry;
    } catch (e) {
      const stale = this.cache.peek(key, { allowStale: true });
      if (!stale) throw e;
      this.logger.warn('agent manager unreachable; using the cached blueprint', { app_id: app, blueprint: name, error: (e as Error).message });
      return stale;
    }
    throw this.unavailable(`blueprint "${name}"`, 'did not answer');
  }

  private async fetchEntry(key: string): Promise<Entry> {
    const app = appOf(key);
    return { agent: await this.request(app, key.slice(app.length + 1)) };
  }

  private request(app: string, name: string): Promise<agents.Agent | null> {
    // 400: a name the agent manager cannot hold (a workflow may name anything) is as missing as an unknown one.
    return this.read(app, `/agents/${encodeURIComponent(name)}`, agents.Agent, `blueprint "${name}"`, [404, 400]);
  }

  /**
   * A read of the agent manager for the app (the service key acts for the app it names, and reads
   * only that app's agents); null when it answers one of the `absent` statuses.
   */
  private async read<S extends z.ZodType>(app: string, path: string, schema: S, what: string, absent: number[]): Promise<z.infer<S> | null> {
    try {
      return await this.http.json('GET', path, schema, { headers: { [SERVICE_KEY_HEADER]: this.serviceKey, [agents.AGENT_APP_HEADER]: app } });
    } catch (e) {
      if (e instanceof UnexpectedStatus) {
        if (absent.includes(e.reply.status)) return null;
        throw this.unavailable(what, `answered ${e.reply.status}`);
      }
      if (e instanceof Unreachable) throw this.unavailable(what, `is unreachable (${e.reason})`);
      if (e instanceof BadGateway) throw this.unavailable(what, 'answered something that does not match its contract');
      throw e;
    }
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private unavailable(what: string, why: string): BlueprintRefusal {
    return new BlueprintRefusal(EngineErrorCode.BlueprintUnavailable, `${what} could not be loaded: the agent manager ${why}; try again`);
  }
}
