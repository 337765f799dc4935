import express, { type Router } from 'express';
import type { Redis } from 'ioredis';
import type { CheckStatus, GatewayReadyReply, HealthReply } from '@tessera/contracts';
import { runChecks } from '@tessera/kit';
import { SERVICE_NAMES } from '../domain/routing';
import { getJson, type Upstreams } from '../proxy/upstreams';

const started = Date.now();
const uptime = () => Math.round((Date.now() - started) / 1000);

/**
 * `/health`: the gateway process serves. `/ready`: 503 only when the gateway cannot serve
 * (Redis down, or shutting down); each service's /health is reported, and one that is down or
 * degraded makes the whole `degraded`, still 200: the gateway keeps routing to the others.
 */
export function healthRoutes(opts: { redis: Redis; upstreams: Upstreams; timeoutMs: number; isShuttingDown?: () => boolean }): Router {
  const r = express.Router();
  r.get('/health', (_req, res) => {
    const body: HealthReply = { status: 'ok', service: 'gateway', uptime_s: uptime() };
    res.json(body);
  });
  r.get('/ready', async (_req, res) => {
    const deployed = SERVICE_NAMES.filter((n) => opts.upstreams[n].base);
    const [checks, services] = await Promise.all([
      runChecks({ redis: async () => void (await opts.redis.ping()) }, opts.timeoutMs),
      Promise.all(deployed.map(async (name) => [name, await serviceHealth(opts.upstreams, name, opts.timeoutMs)] as const)),
    ]);
    let status: CheckStatus = 'ok';
    if (services.some(([, s]) => s.status !== 'ok')) status = 'degraded';
    if (checks.redis.status === 'down' || opts.isShuttingDown?.()) status = 'down';
    const body: GatewayReadyReply = {
      status,
      service: 'gateway',
      uptime_s: uptime(),
      checks,
      services: Object.fromEntries(services),
      disabled: SERVICE_NAMES.filter((n) => !opts.upstreams[n].base),
    };
    res.status(status === 'down' ? 503 : 200).json(body);
  });
  return r;
}

async function serviceHealth(upstreams: Upstreams, name: keyof Upstreams, timeoutMs: number): Promise<GatewayReadyReply['services'][string]> {
  const up = upstreams[name];
  const url = up.base!.origin;
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  try {
    const { status, body } = await getJson(up, '/health', timeoutMs);
    const reported = (body as { status?: string })?.status;
    if (status >= 400) return { status: 'down', url, latency_ms: ms(), error: `HTTP ${status}` };
    return { status: reported === 'degraded' || reported === 'down' ? 'degraded' : 'ok', url, latency_ms: ms() };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { status: 'down', url, latency_ms: ms(), error: err.code ?? err.message };
  }
}
