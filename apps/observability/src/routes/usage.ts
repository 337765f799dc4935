import { ErrorCode, observability } from '@tessera/contracts';
import { BadRequest } from '@tessera/kit';
import type { ObservabilityRoutes, ObservabilityServices } from '../services';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * `GET /usage`: model calls' tokens and cost, per hour or day and per the dimensions asked for;
 * `GET /latency`: the runtime's turn latencies, p50 and p99. Both in the operator's apps only (another app's calls are neither counted nor shown, as if they did
 * not exist; the service key reads every app). The range is whole hours: `from` rounded down,
 * `to` up.
 */
export function usageRoutes(routes: ObservabilityRoutes, s: ObservabilityServices): void {
  routes.route(
    {
      method: 'get',
      path: '/usage',
      summary: "Model calls' tokens and cost per hour or day, by app, user, workflow, agent and model (operator token)",
      tags: ['usage'],
      access: 'operator',
      query: observability.UsageQuery,
      responses: { 200: { description: 'the periods of the range, oldest first, and their total', schema: observability.UsageReply }, 403: { description: 'not an operator' } },
    },
    async ({ query }, req, res) => {
      const { fromHour, toHour } = hoursOf(query);
      const groupBy = query.group_by ?? [];
      const report = await s.usage.report(req.sessionScope!, { from: new Date(fromHour), to: new Date(toHour), granularity: query.granularity, groupBy, appId: query.app_id, limit: query.limit });
      const reply: observability.UsageReply = {
        from: new Date(fromHour).toISOString(),
        to: new Date(toHour).toISOString(),
        granularity: query.granularity,
        group_by: groupBy,
        ...report,
      };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'get',
      path: '/latency',
      summary: "The runtime's turns: time to first text and to the end, p50 and p99 per hour or day, by app or workflow (operator token)",
      tags: ['usage'],
      access: 'operator',
      query: observability.LatencyQuery,
      responses: { 200: { description: 'the periods of the range that had turns, oldest first, and the whole range', schema: observability.LatencyReply }, 403: { description: 'not an operator' } },
    },
    async ({ query }, req, res) => {
      const { fromHour, toHour } = hoursOf(query);
      const report = await s.usage.latency(req.sessionScope!, { from: new Date(fromHour), to: new Date(toHour), granularity: query.granularity, groupBy: query.group_by, appId: query.app_id });
      const reply: observability.LatencyReply = {
        from: new Date(fromHour).toISOString(),
        to: new Date(toHour).toISOString(),
        granularity: query.granularity,
        group_by: query.group_by ?? null,
        ...report,
      };
      res.json(reply);
    },
  );
}

/** The range as whole hours: `from` rounded down, `to` up; checked again once defaults and rounding are applied. */
function hoursOf(query: { from?: string; to?: string }): { fromHour: number; toHour: number } {
  const to = query.to === undefined ? Date.now() : Date.parse(query.to);
  const toHour = Math.ceil(to / HOUR) * HOUR;
  const fromHour = Math.floor((query.from === undefined ? toHour - 7 * DAY : Date.parse(query.from)) / HOUR) * HOUR;
  // Defaults and rounding may meet what the contract checked only for given values.
  if (fromHour >= toHour) throw invalid(query.to === undefined ? 'from' : 'to', query.to === undefined ? 'must be before now (the default to)' : 'must be after from');
  if (toHour - fromHour > observability.USAGE_MAX_RANGE_DAYS * DAY) throw invalid('from', `the range may cover at most ${observability.USAGE_MAX_RANGE_DAYS} days`);
  return { fromHour, toHour };
}

/** As the kit words a query that fails its schema (parseOr400). */
const invalid = (param: string, message: string) => new BadRequest(`invalid query: query.${param}: ${message}`, { issues: [{ path: `query.${param}`, message }] }, ErrorCode.ValidationFailed);
