import express, { type Router } from 'express';
import type { CheckStatus, HealthReply } from '@tessera/contracts';

/** A check resolves (ok), returns a status, or a status with the reason; throwing means down. */
export type Check = () => Promise<CheckStatus | { status: CheckStatus; error?: string } | void>;

const started = Date.now();

/** Run checks with a timeout each: a check that throws or times out is `down`. */
export async function runChecks(checks: Record<string, Check>, timeoutMs = 2_000): Promise<NonNullable<HealthReply['checks']>> {
  const out: NonNullable<HealthReply['checks']> = {};
  await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const t0 = Date.now();
      try {
        const status = await Promise.race([
          check(),
          new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs).unref()),
        ]);
        const r = typeof status === 'object' ? status : { status: status ?? 'ok' };
        out[name] = { status: r.status, latency_ms: Date.now() - t0, ...('error' in r && r.error && { error: r.error }) };
      } catch (e) {
        out[name] = { status: 'down', latency_ms: Date.now() - t0, error: (e as Error).message };
      }
    }),
  );
  return out;
}

export function overall(checks: NonNullable<HealthReply['checks']>, critical: string[]): CheckStatus {
  const values = Object.entries(checks);
  if (values.some(([n, c]) => c.status === 'down' && critical.includes(n))) return 'down';
  if (values.some(([, c]) => c.status !== 'ok')) return 'degraded';
  return 'ok';
}

/** More of a reply: fields added to the body, and a status that can only make the whole worse. */
export type HealthDetails = () => Promise<{ status?: CheckStatus; [field: string]: unknown }> | { status?: CheckStatus; [field: string]: unknown };

const RANK: Record<CheckStatus, number> = { ok: 0, degraded: 1, down: 2 };
const worst = (a: CheckStatus, b: CheckStatus | undefined): CheckStatus => (b && RANK[b] > RANK[a] ? b : a);

/** The readiness checks most services make: Redis answers a PING, PostgreSQL a query. */
export const readyWhen = {
  redis: (redis: { ping(): Promise<unknown> }): Check => async () => void (await redis.ping()),
  postgres: (pool: { query(sql: string): Promise<unknown> }): Check => async () => void (await pool.query('SELECT 1')),
};

export interface HealthOptions {
  service: string;
  ready: Record<string, Check>;
  /** Checks reported on /health as degraded when failing (e.g. a downstream service). */
  liveness?: Record<string, Check>;
  /** What /health adds of the service's own (the bridge's capacity). */
  livenessDetails?: HealthDetails;
  /** What /ready adds of the service's own (the gateway's services behind it). */
  readyDetails?: HealthDetails;
  /** Each check's time limit (default 2 s). */
  timeoutMs?: number;
  isShuttingDown?: () => boolean;
}

/**
 * `/health`: liveness (the process serves HTTP), with optional non-critical checks shown as
 * degraded. `/ready`: every critical dependency reachable, else 503. A service registers them only
 * through `serviceApp` (tools/scripts/test/skeleton.test.ts holds every app to it).
 */
export function healthRouter(opts: HealthOptions): Router {
  const r = express.Router();
  const uptime_s = () => Math.round((Date.now() - started) / 1000);
  r.get('/health', async (_req, res) => {
    const [checks, details] = await Promise.all([opts.liveness ? runChecks(opts.liveness, opts.timeoutMs) : undefined, opts.livenessDetails?.()]);
    const { status: said, ...fields } = details ?? {};
    const status = worst(checks && Object.values(checks).some((c) => c.status !== 'ok') ? 'degraded' : 'ok', said);
    const body: HealthReply = { status, service: opts.service, uptime_s: uptime_s(), ...fields, ...(checks && { checks }) };
    res.json(body);
  });
  r.get('/ready', async (_req, res) => {
    const [checks, details] = await Promise.all([runChecks(opts.ready, opts.timeoutMs), opts.readyDetails?.()]);
    const { status: said, ...fields } = details ?? {};
    let status = worst(overall(checks, Object.keys(opts.ready)), said);
    if (opts.isShuttingDown?.()) status = 'down';
    const body: HealthReply = { status, service: opts.service, uptime_s: uptime_s(), checks, ...fields };
    res.status(status === 'down' ? 503 : 200).json(body);
  });
  return r;
}
