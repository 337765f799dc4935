import { z } from 'zod';
import { CheckStatus } from '../common/health';

/** `GET /ready` on the gateway: its own state and each downstream service's. */
export const GatewayReadyReply = z
  .object({
    status: CheckStatus,
    services: z.record(
      z.string(),
      z.object({ status: CheckStatus, url: z.string(), latency_ms: z.number().optional(), error: z.string().optional() }),
    ),
  })
  .meta({ id: 'GatewayReadyReply' });
export type GatewayReadyReply = z.infer<typeof GatewayReadyReply>;
