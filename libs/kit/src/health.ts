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

/**
 * `/health`: liveness (the process serves HTTP), with optional non-critical checks shown as
 * degraded. `/ready`: every critical dependency reachable, else 503.
 */
export function healthRouter(opts: {
  service: string;
  ready: Record<string, Check>;
  /** Checks reported on /health as degraded when failing (e.g. a downstream service). */
  liveness?: Record<string, Check>;
  isShuttingDown?: () => boolean;
}): Router {
  const r = express.Router();
  r.get('/health', async (_req, res) => {
    const checks = opts.liveness ? await runChecks(opts.liveness) : undefined;
    const body: HealthReply = {
      status: checks && Object.values(checks).some((c) => c.status !== 'ok') ? 'degraded' : 'ok',
      service: opts.service,
      uptime_s: Math.round((Date.now() - started) / 1000),
      ...(checks && { checks }),
    };
    res.json(body);
  });
  r.get('/ready', async (_req, res) => {
    const checks = await runChecks(opts.ready);
    let status = overall(checks, Object.keys(opts.ready));
    if (opts.isShuttingDown?.()) status = 'down';
    const body: HealthReply = { status, service: opts.service, uptime_s: Math.round((Date.now() - started) / 1000), checks };
    res.status(status === 'down' ? 503 : 200).json(body);
  });
  return r;
}
