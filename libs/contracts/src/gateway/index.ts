import { z } from 'zod';
import { CheckStatus } from '../common/health';

const Check = z.object({ status: CheckStatus, latency_ms: z.number().optional(), error: z.string().optional() });

/**
 * `GET /ready` on the gateway: its own dependencies (`checks`: Redis) and each downstream
 * service's /health. `down` (503) only when the gateway itself cannot serve; a service that is
 * down makes it `degraded` (200). Services configured `off` are listed under `disabled`.
 */
export const GatewayReadyReply = z
  .object({
    status: CheckStatus,
    service: z.string(),
    uptime_s: z.number(),
    checks: z.record(z.string(), Check),
    /** Each service, with each of its instances when it has several (`*_URL` lists them). */
    services: z.record(z.string(), Check.extend({ url: z.string(), instances: z.array(Check.extend({ url: z.string() })).optional() })),
    disabled: z.array(z.string()),
  })
  .meta({ id: 'GatewayReadyReply' });
export type GatewayReadyReply = z.infer<typeof GatewayReadyReply>;

/** A service whose OpenAPI document could not be fetched, listed in the merged document's `x-unavailable`. */
export const UnavailableService = z.object({ service: z.string(), url: z.string(), error: z.string() });
export type UnavailableService = z.infer<typeof UnavailableService>;
