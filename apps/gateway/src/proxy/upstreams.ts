import http from 'node:http';
import https from 'node:https';
import type { ServiceName } from '../domain/routing';
import type { GatewayConfig } from '../config';

/** One service behind the gateway, with its own pool of keep-alive connections. */
export interface Upstream {
  name: ServiceName;
  /** Null when the service is not deployed (`<NAME>_URL=off`). */
  base: URL | null;
  agent: http.Agent;
  /** Host header for the service (`host:port`). */
  host: string;
}

const CONFIG_KEY: Record<ServiceName, keyof GatewayConfig> = {
  runtime: 'RUNTIME_URL',
  broker: 'BROKER_URL',
  observability: 'OBSERVABILITY_URL',
  agents: 'AGENTS_URL',
  documents: 'DOCUMENTS_URL',
  bridge: 'BRIDGE_URL',
};

export type Upstreams = Record<ServiceName, Upstream>;

export function createUpstreams(config: GatewayConfig): Upstreams {
  const out = {} as Upstreams;
  for (const [name, key] of Object.entries(CONFIG_KEY) as [ServiceName, keyof GatewayConfig][]) {
    const raw = String(config[key]);
    const base = raw === 'off' ? null : new URL(raw);
    const secure = base?.protocol === 'https:';
    // Free sockets close after 30 s, below the services' 65 s keep-alive, so that the gateway
    // rarely reuses a socket the service is closing.
    const opts = { keepAlive: true, maxSockets: 512, maxFreeSockets: 128, timeout: 30_000, scheduling: 'lifo' as const };
    out[name] = { name, base, agent: secure ? new https.Agent(opts) : new http.Agent(opts), host: base?.host ?? '' };
  }
  return out;
}

export function destroyUpstreams(u: Upstreams): void {
  for (const up of Object.values(u)) up.agent.destroy();
}

/** The request module of a service's scheme. */
export function transportOf(up: Upstream): typeof http | typeof https {
  return up.base?.protocol === 'https:' ? https : http;
}

/** Network errors that mean "the service is not there" (503) rather than "it failed" (502). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'CONNECT_TIMEOUT']);
export function isUnreachable(err: unknown): boolean {
  return UNREACHABLE.has((err as NodeJS.ErrnoException)?.code ?? '');
}

/** Fail a request whose connection is not established within `ms` (ECONNREFUSED fails at once anyway). */
export function connectTimeout(req: http.ClientRequest, ms: number): void {
  req.once('socket', (socket) => {
    if (!socket.connecting) return;
    const t = setTimeout(() => req.destroy(Object.assign(new Error(`connect timed out after ${ms} ms`), { code: 'CONNECT_TIMEOUT' })), ms);
    socket.once('connect', () => clearTimeout(t));
    socket.once('close', () => clearTimeout(t));
  });
}

/** GET a JSON document from a service within a time budget (health, OpenAPI). */
export function getJson(up: Upstream, path: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    if (!up.base) return reject(new Error('not deployed'));
    const req = transportOf(up).request(
      { protocol: up.base.protocol, hostname: up.base.hostname, port: up.base.port, path, method: 'GET', agent: up.agent, headers: { accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 8 * 1024 * 1024) req.destroy(new Error('reply too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: reply is not JSON`));
          }
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end();
  });
}
