import type { Redis } from 'ioredis';
import { AgentChange, agents, Channel } from '@tessera/contracts';
import { SERVICE_KEY_HEADER, whenReady, type Logger } from '@tessera/kit';
import { BlueprintRefusal, EngineErrorCode } from '../engine/run-turn';

/** A turn waits this long for the agent manager before it fails with BLUEPRINT_UNAVAILABLE. */
const FETCH_TIMEOUT_MS = 5_000;

type Entry = { at: number; agent: agents.Agent | null };

/**
 * Blueprints of the agent manager (`AGENTS_URL`, read with the service key), cached per worker
 * process. An announcement on `Channel.agentChanges` drops the agent's copy, so an edit reaches
 * the next turn; the TTL bounds staleness when announcements are lost (Redis down). A copy past
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

  /** Follows the announcements on `sub` (a subscriber connection); after a reconnect everything is dropped, since some may have been missed. */
  async listen(sub: Redis): Promise<void> {
    const channel = Channel.agentChanges.name();
    sub.on('message', (ch: string, message: string) => {
      if (ch !== channel) return;
      const change = AgentChange.safeParse(safeJson(message));
      if (change.success) this.drop(change.data.name);
      else this.logger.warn('ignoring a malformed agent change', { channel });
    });
    let down = false;
    sub.on('close', () => (down = true));
    sub.on('ready', () => {
      if (down) this.drop();
      down = false;
    });
    await whenReady(sub);
    await sub.subscribe(channel);
  }

  /** The blueprint's system prompt; refuses (BlueprintRefusal) an inactive, missing or unreachable one. */
  readonly resolve = async (name: string): Promise<string> => {
    const { agent } = await this.entry(name);
    if (!agent) throw new BlueprintRefusal(EngineErrorCode.BlueprintNotFound, `blueprint "${name}" does not exist in the agent manager`);
    if (agent.status !== 'active')
      throw new BlueprintRefusal(EngineErrorCode.BlueprintInactive, `blueprint "${name}" is inactive in the agent manager: new turns are refused until an operator activates it`);
    return agent.system_prompt;
  };

  drop(name?: string): void {
    this.epoch++;
    if (name === undefined) this.cache.clear();
    else this.cache.delete(name);
  }

  private entry(name: string): Promise<Entry> {
    const hit = this.cache.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return Promise.resolve(hit);
    let p = this.inflight.get(name);
    if (!p) {
      p = this.fetch(name, hit).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  private async fetch(name: string, stale: Entry | undefined): Promise<Entry> {
    const epoch = this.epoch;
    let entry: Entry;
    try {
      entry = { at: Date.now(), agent: await this.request(name) };
    } catch (e) {
      if (stale && this.cache.get(name) === stale) {
        this.logger.warn('agent manager unreachable; using the cached blueprint', { blueprint: name, error: (e as Error).message });
        return stale;
      }
      throw e;
    }
    if (epoch === this.epoch) this.cache.set(name, entry);
    return entry;
  }

  private async request(name: string): Promise<agents.Agent | null> {
    const unavailable = (why: string) => new BlueprintRefusal(EngineErrorCode.BlueprintUnavailable, `blueprint "${name}" could not be loaded: the agent manager ${why}; try again`);
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/agents/${encodeURIComponent(name)}`, {
        headers: { [SERVICE_KEY_HEADER]: this.serviceKey },
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw unavailable(err.name === 'TimeoutError' ? `did not answer within ${FETCH_TIMEOUT_MS} ms` : `is unreachable (${err.cause?.code ?? err.message})`);
    }
    const body = await res.json().catch(() => undefined);
    // 400: a name the agent manager cannot hold (a workflow may name anything) is as missing as an unknown one.
    if (res.status === 404 || res.status === 400) return null;
    if (res.status !== 200) throw unavailable(`answered ${res.status}`);
    const agent = agents.Agent.safeParse(body);
    if (!agent.success) throw unavailable('answered something that is not an agent');
    return agent.data;
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
