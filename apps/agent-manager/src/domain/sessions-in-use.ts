import { agents, observability } from '@tessera/contracts';
import type { z } from 'zod';
import { BadGateway, Conflict, SERVICE_KEY_HEADER, ServiceClient, Unavailable, UnexpectedStatus, Unreachable } from '@tessera/kit';
import type { AgentManagerConfig } from '../config';

type Found = { sessions: agents.SessionInUse[] } | { error: string };

/**
 * Running sessions of one app that use its agent, asked of the services that run them: the
 * runtime (the app's open chats whose workflow has an agent on this blueprint) and observability
 * (the app's running sessions reported with this `agent_name`: outside agents, the bridge). Both
 * are asked for the app the request acts in, and observability with the operator's own token (the
 * service key would read every app): another app's sessions are never named. A service set to
 * `off` is not deployed and has none; one that does not answer makes the answer unknown, and the
 * change waits.
 */
export class SessionsInUse {
  private readonly runtime: ServiceClient | null;
  private readonly observability: ServiceClient | null;

  constructor(private readonly config: Pick<AgentManagerConfig, 'RUNTIME_URL' | 'OBSERVABILITY_URL' | 'SERVICE_KEY' | 'SESSION_CHECK_TIMEOUT_MS'>) {
    const timeoutMs = config.SESSION_CHECK_TIMEOUT_MS;
    this.runtime = config.RUNTIME_URL ? new ServiceClient(config.RUNTIME_URL, 'runtime', { timeoutMs }) : null;
    this.observability = config.OBSERVABILITY_URL ? new ServiceClient(config.OBSERVABILITY_URL, 'observability', { timeoutMs }) : null;
  }

  /** Refuses (409, naming the app's sessions) when any runs; 503 when a service could not say. */
  async assertNone(app: string, name: string, action: 'deleted' | 'deactivated', authorization?: string): Promise<void> {
    const [runtime, obs] = await Promise.all([this.fromRuntime(app, name), this.fromObservability(app, name, authorization)]);
    const errors = [runtime, obs].flatMap((r) => ('error' in r ? [r.error] : []));
    if (errors.length) throw new Unavailable(`cannot tell whether sessions use agent "${name}" (${errors.join('; ')}); try again, or add ?force=true to skip the check`, { errors });
    const byId = new Map<string, agents.SessionInUse>();
    // A runtime chat is also an observability session (same id): the runtime's entry says more.
    // Only the app's own, whatever a service answered.
    for (const s of [...(runtime as { sessions: agents.SessionInUse[] }).sessions, ...(obs as { sessions: agents.SessionInUse[] }).sessions])
      if (s.app_id === app && !byId.has(s.session_id)) byId.set(s.session_id, s);
    const sessions = [...byId.values()];
    if (sessions.length === 0) return;
    const named = sessions.slice(0, 10).map((s) => (s.source === 'runtime' ? `${s.session_id} (chat of workflow "${s.workflow}")` : `${s.session_id} (${s.source})`));
    const more = sessions.length > named.length ? ` and ${sessions.length - named.length} more` : '';
    throw new Conflict(
      `agent "${name}" cannot be ${action}: ${sessions.length} running session${sessions.length === 1 ? '' : 's'} use${sessions.length === 1 ? 's' : ''} it: ${named.join(', ')}${more}; stop them first, or add ?force=true`,
      { sessions },
    );
  }

  private async fromRuntime(app: string, name: string): Promise<Found> {
    if (!this.runtime) return { sessions: [] };
    const q = new URLSearchParams({ app_id: app });
    const r = await this.ask(this.runtime, `/api/internal/blueprints/${encodeURIComponent(name)}/active-chats?${q}`, agents.ActiveChatsReply, { [SERVICE_KEY_HEADER]: this.config.SERVICE_KEY });
    if ('error' in r) return r;
    return { sessions: r.reply.chats.map((c) => ({ session_id: c.chat_id, source: 'runtime', workflow: c.workflow_name, app_id: c.app_id, status: c.status })) };
  }

  /**
   * Observability reads are an operator's: the operator's own token goes along, without the
   * service key (which would widen it to every app), and the app narrows it further. Without a
   * token (auth disabled, local development) the service key asks, for the app only.
   */
  private async fromObservability(app: string, name: string, authorization?: string): Promise<Found> {
    if (!this.observability) return { sessions: [] };
    const q = new URLSearchParams({ agent_name: name, app_id: app, status: 'running', limit: '100' });
    const r = await this.ask(this.observability, `/sessions?${q}`, observability.SessionsReply, authorization ? { authorization } : { [SERVICE_KEY_HEADER]: this.config.SERVICE_KEY });
    if ('error' in r) return r;
    return { sessions: r.reply.sessions.map((s) => ({ session_id: s.session_id, source: 'observability', workflow: s.workflow, app_id: s.app_id, status: s.status })) };
  }

  /** The service's reply, checked with its contract; what went wrong, in a phrase, otherwise. */
  private async ask<S extends z.ZodType>(client: ServiceClient, path: string, schema: S, headers: Record<string, string>): Promise<{ reply: z.infer<S> } | { error: string }> {
    try {
      return { reply: await client.json('GET', path, schema, { headers }) };
    } catch (e) {
      if (e instanceof UnexpectedStatus) return { error: `${client.name} answered ${e.reply.status}${errorCode(e.reply.body)}` };
      if (e instanceof Unreachable) return { error: `${client.name} unreachable (${e.reason})` };
      if (e instanceof BadGateway) return { error: `${client.name}: unexpected reply` };
      throw e;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.runtime?.close(), this.observability?.close()]);
  }
}

function errorCode(body: unknown): string {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? ` ${code}` : '';
}
