import { agents, observability } from '@tessera/contracts';
import { Conflict, SERVICE_KEY_HEADER, Unavailable } from '@tessera/kit';
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
  constructor(private readonly config: Pick<AgentManagerConfig, 'RUNTIME_URL' | 'OBSERVABILITY_URL' | 'SERVICE_KEY' | 'SESSION_CHECK_TIMEOUT_MS'>) {}

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
    const base = this.config.RUNTIME_URL;
    if (!base) return { sessions: [] };
    const q = new URLSearchParams({ app_id: app });
    const r = await this.get('runtime', `${base}/api/internal/blueprints/${encodeURIComponent(name)}/active-chats?${q}`, { [SERVICE_KEY_HEADER]: this.config.SERVICE_KEY });
    if ('error' in r) return r;
    const body = agents.ActiveChatsReply.safeParse(r.json);
    if (!body.success) return { error: 'runtime: unexpected reply' };
    return { sessions: body.data.chats.map((c) => ({ session_id: c.chat_id, source: 'runtime', workflow: c.workflow_name, app_id: c.app_id, status: c.status })) };
  }

  /**
   * Observability reads are an operator's: the operator's own token goes along, without the
   * service key (which would widen it to every app), and the app narrows it further. Without a
   * token (auth disabled, local development) the service key asks, for the app only.
   */
  private async fromObservability(app: string, name: string, authorization?: string): Promise<Found> {
    const base = this.config.OBSERVABILITY_URL;
    if (!base) return { sessions: [] };
    const q = new URLSearchParams({ agent_name: name, app_id: app, status: 'running', limit: '100' });
    const r = await this.get('observability', `${base}/sessions?${q}`, authorization ? { authorization } : { [SERVICE_KEY_HEADER]: this.config.SERVICE_KEY });
    if ('error' in r) return r;
    const body = observability.SessionsReply.safeParse(r.json);
    if (!body.success) return { error: 'observability: unexpected reply' };
    return { sessions: body.data.sessions.map((s) => ({ session_id: s.session_id, source: 'observability', workflow: s.workflow, app_id: s.app_id, status: s.status })) };
  }

  private async get(service: string, url: string, headers: Record<string, string>): Promise<{ json: unknown } | { error: string }> {
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(this.config.SESSION_CHECK_TIMEOUT_MS) });
      const text = await res.text();
      if (res.status !== 200) return { error: `${service} answered ${res.status}${errorCode(text)}` };
      return { json: JSON.parse(text) as unknown };
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      const why = err.name === 'TimeoutError' ? `no answer within ${this.config.SESSION_CHECK_TIMEOUT_MS} ms` : (err.cause?.code ?? err.message);
      return { error: `${service} unreachable (${why})` };
    }
  }
}

function errorCode(text: string): string {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? ` ${code}` : '';
  } catch {
    return '';
  }
}
