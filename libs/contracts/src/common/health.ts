import { z } from 'zod';

export const CheckStatus = z.enum(['ok', 'degraded', 'down']);
export type CheckStatus = z.infer<typeof CheckStatus>;

export const HealthReply = z
  .object({
    status: CheckStatus,
    service: z.string(),
    uptime_s: z.number(),
    checks: z.record(z.string(), z.object({ status: CheckStatus, latency_ms: z.number().optional(), error: z.string().optional() })).optional(),
  })
  .meta({ id: 'HealthReply' });
export type HealthReply = z.infer<typeof HealthReply>;
