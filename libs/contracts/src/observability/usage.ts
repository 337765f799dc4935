import { z } from 'zod';
import { IsoTimeInRange, QueryInt4 } from '../common/ranges';
import { SafeText } from '../common/safe';

/**
 * `GET /usage`: model calls' tokens and cost, summed per hour or day and per the dimensions asked
 * for, in the caller's apps only.
 */

export const USAGE_DIMENSIONS = ['app', 'user', 'workflow', 'agent', 'model'] as const;
export const UsageDimension = z.enum(USAGE_DIMENSIONS);
export type UsageDimension = z.infer<typeof UsageDimension>;
export const UsageGranularity = z.enum(['hour', 'day']);

/** The longest range one request may cover, so that an hourly report stays a bounded read. */
export const USAGE_MAX_RANGE_DAYS = 400;

const GroupBy = z
  .string()
  .max(200)
  .transform((s, ctx) => {
    const out: UsageDimension[] = [];
    for (const part of s.split(',').map((p) => p.trim())) {
      if (part === '') continue;
      const d = UsageDimension.safeParse(part);
      if (!d.success) {
        ctx.addIssue({ code: 'custom', message: `"${part.slice(0, 40)}" is not a dimension; use a comma-separated list of ${USAGE_DIMENSIONS.join(', ')}` });
        return z.NEVER;
      }
      if (!out.includes(d.data)) out.push(d.data);
    }
    return out;
  });

/** `from` before `to`, at most USAGE_MAX_RANGE_DAYS apart (when both are given; the route checks its defaults). */
function checkRange(q: { from?: string; to?: string }, ctx: z.RefinementCtx): void {
  if (q.from === undefined || q.to === undefined) return;
  const from = Date.parse(q.from);
  const to = Date.parse(q.to);
  if (from >= to) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
  else if (to - from > USAGE_MAX_RANGE_DAYS * 86_400_000) ctx.addIssue({ code: 'custom', path: ['from'], message: `the range may cover at most ${USAGE_MAX_RANGE_DAYS} days` });
}

export const UsageQuery = z
  .object({
    group_by: GroupBy.optional().describe(`comma-separated: ${USAGE_DIMENSIONS.join(', ')} (none: one row per period)`),
    from: IsoTimeInRange().optional().describe('start, inclusive (rounded down to its hour); default: 7 days before `to`'),
    to: IsoTimeInRange().optional().describe('end, exclusive (rounded up to the hour); default: now'),
    granularity: UsageGranularity.default('day').describe('the period of a row: hour, or day (UTC)'),
    app_id: SafeText.pipe(z.string().max(128)).optional().describe('only this app (one of yours; another answers nothing)'),
    limit: QueryInt4().min(1).max(10_000).default(1000).describe('rows at most; `truncated` says when more matched'),
  })
  .superRefine(checkRange);
export type UsageQuery = z.infer<typeof UsageQuery>;

const Tokens = {
  calls: z.number().int().describe('model calls'),
  input_tokens: z.number().int().describe('every input token, cached or not'),
  output_tokens: z.number().int(),
  cache_read_tokens: z.number().int().describe('input tokens read from a prompt cache'),
  cache_write_tokens: z.number().int().describe('input tokens written to a prompt cache'),
  reasoning_tokens: z.number().int().describe('output tokens spent reasoning'),
  cost_usd: z.number().nullable().describe('the priced calls’ cost in US dollars; null when no call was priced'),
  unpriced_calls: z.number().int().describe('calls of a model with no known price: not in cost_usd'),
};

export const UsageRow = z
  .object({
    period_start: z.string().describe('the hour or day (UTC) the row sums'),
    app_id: z.string().nullable().optional(),
    user_id: z.string().nullable().optional(),
    workflow: z.string().nullable().optional(),
    agent: z.string().nullable().optional(),
    model: z.string().nullable().optional(),
    ...Tokens,
  })
  .meta({ id: 'UsageRow' });
export type UsageRow = z.infer<typeof UsageRow>;

export const UsageReply = z
  .object({
    from: z.string(),
    to: z.string(),
    granularity: UsageGranularity,
    group_by: z.array(UsageDimension),
    rows: z.array(UsageRow),
    /** Every matching call, whatever `limit` cut off. */
    total: z.object(Tokens),
    truncated: z.boolean(),
  })
  .meta({ id: 'UsageReply' });
export type UsageReply = z.infer<typeof UsageReply>;

/**
 * `GET /latency`: how long the runtime's turns took, as their users saw them, per hour or day:
 * from the message being accepted to the first text of the answer, and to the turn's end, as
 * p50 and p99 (from each `chat.run_complete`'s `first_text_ms` and `duration_ms`). Turns are
 * counted in the period they ended in.
 */
export const LATENCY_DIMENSIONS = ['app', 'workflow'] as const;
export const LatencyQuery = z
  .object({
    group_by: z.enum(LATENCY_DIMENSIONS).optional().describe('one row per app or workflow and period (none: one row per period)'),
    from: IsoTimeInRange().optional().describe('start, inclusive (rounded down to its hour); default: 7 days before `to`'),
    to: IsoTimeInRange().optional().describe('end, exclusive (rounded up to the hour); default: now'),
    granularity: UsageGranularity.default('day').describe('the period of a row: hour, or day (UTC)'),
    app_id: SafeText.pipe(z.string().max(128)).optional().describe('only this app (one of yours; another answers nothing)'),
  })
  .superRefine(checkRange);
export type LatencyQuery = z.infer<typeof LatencyQuery>;

const Percentiles = z.object({ p50: z.number().nullable(), p99: z.number().nullable() }).describe('milliseconds; null when no turn had one');
const Latencies = {
  turns: z.number().int().describe('turns that ended in the period'),
  first_text_ms: Percentiles,
  turn_ms: Percentiles,
};
export const LatencyRow = z
  .object({ period_start: z.string(), app_id: z.string().nullable().optional(), workflow: z.string().nullable().optional(), ...Latencies })
  .meta({ id: 'LatencyRow' });
export type LatencyRow = z.infer<typeof LatencyRow>;
export const LatencyReply = z
  .object({ from: z.string(), to: z.string(), granularity: UsageGranularity, group_by: z.enum(LATENCY_DIMENSIONS).nullable(), rows: z.array(LatencyRow), total: z.object(Latencies) })
  .meta({ id: 'LatencyReply' });
export type LatencyReply = z.infer<typeof LatencyReply>;
