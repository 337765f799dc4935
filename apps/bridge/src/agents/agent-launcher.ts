import type { BridgeConfig } from '../config';
import { normalizeAccessToken, sessionTokenOf } from '../domain/tokens';
import { OpencodeClient } from './opencode-client';
import type { RunningServer, ServerPool } from './server-pool';

/** What one session's agent server is started with. */
export interface LaunchRequest {
  sessionId: string;
  /** The session token's nonce: the MCP callback authenticates with that token. */
  nonce: string;
  password: string;
  model: string | null;
  /** Normalized (tokens.ts). */
  scadaUrl: string;
  /** The host user's SCADA token, as the host sent it. */
  accessToken: string;
}

export interface LaunchedAgent {
  server: RunningServer;
  client: OpencodeClient;
  /** Where the host reaches the server (OPENCODE_PUBLIC_HOST when set). */
  url: string;
  /** The agent's session for the host to prompt (null: a stand-in without `POST /session`). */
  opencodeSessionId: string | null;
}

/**
 * Starts one session's agent server: its configuration (model, CORS, the MCP callback to this
 * bridge with the session's token and the user's SCADA token), the sandboxed process through the
 * pool, and the OpenCode session the host will prompt.
 */
export class AgentLauncher {
  /** The bridge's own URL for the agent server's MCP callback, known once it listens. */
  callbackUrl = '';

  constructor(
    private readonly config: BridgeConfig,
    private readonly pool: ServerPool,
  ) {}

  async launch(r: LaunchRequest): Promise<LaunchedAgent> {
    const c = this.config;
    const server = await this.pool.start(r.sessionId, this.envOf(r), r.password);
    const client = new OpencodeClient({ host: c.OPENCODE_HOST, port: server.port, password: r.password });
    return { server, client, url: `http://${c.OPENCODE_PUBLIC_HOST ?? c.OPENCODE_HOST}:${server.port}`, opencodeSessionId: await client.createSession() };
  }

  private envOf(r: LaunchRequest): Record<string, string> {
    const c = this.config;
    const callback = {
      BACKEND_BRIDGE_URL: this.callbackUrl,
      BRIDGE_SESSION_ID: r.sessionId,
      BRIDGE_SESSION_TOKEN: sessionTokenOf(c.tokenSecret, r.sessionId, r.nonce),
      SCADA_URL: r.scadaUrl,
      // The agent server's tools act for the host's user: the token lives in that process only.
      SCADA_ACCESS_TOKEN: normalizeAccessToken(r.accessToken),
    };
    const opencodeConfig = {
      $schema: 'https://opencode.ai/config.json',
      autoupdate: false,
      share: 'disabled',
      ...(r.model && { model: r.model }),
      ...(c.OPENCODE_CORS_ORIGINS.length && { server: { cors: c.OPENCODE_CORS_ORIGINS } }),
      ...(c.OPENCODE_MCP_COMMAND && {
        mcp: { tessera: { type: 'local', command: c.OPENCODE_MCP_COMMAND.split(/\s+/).filter(Boolean), environment: callback, enabled: true } },
      }),
    };
    return { ...callback, OPENCODE_CONFIG_CONTENT: JSON.stringify(opencodeConfig) };
  }
}
