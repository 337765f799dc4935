import { agents } from '@tessera/contracts';
import { channelOf, SERVICE_KEY_HEADER, type BusSubscriber, type Logger } from '@tessera/kit';
import { BlueprintRefusal, EngineErrorCode } from '../engine/run-turn';

/** A turn waits this long for the agent manager before it fails with BLUEPRINT_UNAVAILABLE. */
const FETCH_TIMEOUT_MS = 5_000;

type Entry = { at: number; name: string; agent: agents.Agent | null };

/** The cache's key: a blueprint is an app's (the same name in two apps is two blueprints). */
const keyOf = (app: string, name: string) => `${app}\u0000${name}`;

/**
 * Blueprints of the agent manager (`AGENTS_URL`, read with the service key for the chat's app),
 * cached per worker process by app and name. An announcement on `Channel.agentChanges` drops that
 * app's copy of the agent, so an edit reaches the next turn; the TTL bounds staleness when announcements are lost (Redis down). A copy past
 * its TTL that no announcement dropped still serves while the agent manager does not answer.
 */
export class BlueprintSource {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  /** Bumped by every drop: a fetch that started before it must not cache what it read. */
  private epoch = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly serviceKey: string,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

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
    this.epoch++;
    if (name === undefined) this.cache.clear();
    else if (app !== undefined) this.cache.delete(keyOf(app, name));
    else for (const [key, entry] of this.cache) if (entry.name === name) this.cache.delete(key);
  }

  private entry(app: string, name: string): Promise<Entry> {
    const key = keyOf(app, name);
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < this.ttlMs) return Promise.resolve(hit);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetch(app, name, hit).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetch(app: string, name: string, stale: Entry | undefined): Promise<Entry> {
    const epoch = this.epoch;
    const key = keyOf(app, name);
    let entry: Entry;
    try {
      entry = { at: Date.now(), name, agent: await this.request(app, name) };
    } catch (e) {
      if (stale && this.cache.get(key) === stale) {
        this.logger.warn('agent manager unreachable; using the cached blueprint', { app_id: app, blueprint: name, error: (e as Error).message });
        return stale;
      }
      throw e;
    }
    if (epoch === this.epoch) this.cache.set(key, entry);
    return entry;
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
