import { z } from 'zod';

/** The one error shape every Tessera service answers with. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe('Stable machine-readable code, e.g. BAD_REQUEST, NOT_FOUND'),
      message: z.string().describe('Human-readable, safe to show'),
      details: z.unknown().optional().describe('Structured details, e.g. the failing zod paths'),
    }),
  })
  .meta({ id: 'ErrorBody' });
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ErrorCode = {
  BadRequest: 'BAD_REQUEST',
  ValidationFailed: 'VALIDATION_FAILED',
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  TooLarge: 'PAYLOAD_TOO_LARGE',
  RateLimited: 'RATE_LIMITED',
  QuotaExceeded: 'QUOTA_EXCEEDED',
  BudgetExceeded: 'BUDGET_EXCEEDED',
  Unavailable: 'SERVICE_UNAVAILABLE',
  BadGateway: 'BAD_GATEWAY',
  GatewayTimeout: 'GATEWAY_TIMEOUT',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
