import { LRUCache } from 'lru-cache';
import { agents } from '@tessera/contracts';
import { channelOf, SERVICE_KEY_HEADER, type BusSubscriber, type Logger } from '@tessera/kit';
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

  constructor(
    private readonly baseUrl: string,
    private readonly serviceKey: string,
    ttlMs: number,
    private readonly logger: Logger,
    /** The cache's clock (tests move it); `performance` by default. */
    clock?: { now(): number },
  ) {
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
    const body = await this.call(app, '/agents', 'the agents');
    if (body.status !== 200) throw this.unavailable('the agents', `answered ${body.status}`);
    const list = agents.AgentsReply.safeParse(body.json);
    if (!list.success) throw this.unavailable('the agents', 'answered something that is not a list of agents');
    return list.data;
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

  private async request(app: string, name: string): Promise<agents.Agent | null> {
    const what = `blueprint "${name}"`;
    const res = await this.call(app, `/agents/${encodeURIComponent(name)}`, what);
    // 400: a name the agent manager cannot hold (a workflow may name anything) is as missing as an unknown one.
    if (res.status === 404 || res.status === 400) return null;
    if (res.status !== 200) throw this.unavailable(what, `answered ${res.status}`);
    const agent = agents.Agent.safeParse(res.json);
    if (!agent.success) throw this.unavailable(what, 'answered something that is not an agent');
    return agent.data;
  }

  /** A read of the agent manager for the app (the service key acts for the app it names, and reads only that app's agents). */
  private async call(app: string, path: string, what: string): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        headers: { [SERVICE_KEY_HEADER]: this.serviceKey, [agents.AGENT_APP_HEADER]: app },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw this.unavailable(what, err.name === 'TimeoutError' ? `did not answer within ${FETCH_TIMEOUT_MS} ms` : `is unreachable (${err.cause?.code ?? err.message})`);
    }
    return { status: res.status, json: await res.json().catch(() => undefined) };
  }

  private unavailable(what: string, why: string): BlueprintRefusal {
    return new BlueprintRefusal(EngineErrorCode.BlueprintUnavailable, `${what} could not be loaded: the agent manager ${why}; try again`);
  }
}
