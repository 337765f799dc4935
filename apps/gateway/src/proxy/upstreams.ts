import http from 'node:http';
import https from 'node:https';
import type { ServiceName } from '../domain/routing';
import { serviceInstances, type GatewayConfig } from '../config';

/** One instance of a service, with its own pool of keep-alive connections. */
export interface Instance {
  base: URL;
  agent: http.Agent;
  /** Host header for the instance (`host:port`). */
  host: string;
  /** Until then (ms epoch) the instance is tried last: it refused a connection. */
  downUntil: number;
}

/** How long an instance that refused a connection is tried last (not skipped: it may be back sooner). */
export const DOWN_FOR_MS = 2_000;

/**
 * One service behind the gateway: its instances, taken in turn (round robin). An instance that
 * refuses a connection is tried after the others for a short while, so that a stopped instance
 * costs clients nothing, not even a refused connection per request.
 */
export class ServerPool {
  private turn = 0;

  constructor(
    readonly name: ServiceName,
    /** Empty when the service is not deployed (`<NAME>_URL=off`). */
    readonly instances: Instance[],
  ) {}

  get deployed(): boolean {
    return this.instances.length > 0;
  }

  /** The instances in the order one request tries them: the next in turn first, the ones that were down last. */
  order(now = Date.now()): Instance[] {
    const n = this.instances.length;
    if (n <= 1) return this.instances;
    const start = this.turn++ % n;
    const rotated = [...this.instances.slice(start), ...this.instances.slice(0, start)];
    return [...rotated.filter((i) => i.downUntil <= now), ...rotated.filter((i) => i.downUntil > now)];
  }

  markDown(inst: Instance, now = Date.now()): void {
    inst.downUntil = now + DOWN_FOR_MS;
  }
}

const CONFIG_KEY: Record<ServiceName, keyof GatewayConfig> = {
  runtime: 'RUNTIME_URL',
  broker: 'BROKER_URL',
  observability: 'OBSERVABILITY_URL',
  agents: 'AGENTS_URL',
  documents: 'DOCUMENTS_URL',
  bridge: 'BRIDGE_URL',
};

export type Upstreams = Record<ServiceName, ServerPool>;

export function createUpstreams(config: GatewayConfig): Upstreams {
  const out = {} as Upstreams;
  for (const [name, key] of Object.entries(CONFIG_KEY) as [ServiceName, keyof GatewayConfig][]) {
    const instances = serviceInstances(String(config[key])).map((base) => {
      // Free sockets close after 30 s, below the services' 65 s keep-alive, so that the gateway
      // rarely reuses a socket the service is closing.
      const opts = { keepAlive: true, maxSockets: 512, maxFreeSockets: 128, timeout: 30_000, scheduling: 'lifo' as const };
      const agent = base.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
      return { base, agent, host: base.host, downUntil: 0 };
    });
    out[name] = new ServerPool(name, instances);
  }
  return out;
}

export function destroyUpstreams(u: Upstreams): void {
  for (const pool of Object.values(u)) for (const inst of pool.instances) inst.agent.destroy();
}

/** The request module of an instance's scheme. */
export function transportOf(inst: Instance): typeof http | typeof https {
  return inst.base.protocol === 'https:' ? https : http;
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

/** GET a JSON document from one instance within a time budget (health, OpenAPI). */
export function getJson(inst: Instance, path: string, timeoutMs: number): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = transportOf(inst).request(
      { protocol: inst.base.protocol, hostname: inst.base.hostname, port: inst.base.port, path, method: 'GET', agent: inst.agent, headers: { accept: 'application/json' } },
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
