import type { z } from 'zod';
import { budgets as b, type RouteSpec } from '@tessera/contracts';
import { canUseApp, Forbidden, NotFound, type Principal } from '@tessera/kit';
import type { BudgetMeter } from '../budgets/meter';
import { APP_WIDE, type BudgetRow, type BudgetStore } from '../store/budgets';
import type { RuntimeRoutes } from '../services';

const BUDGETS_PATH = '/api/budgets';
const tags = ['budgets'];
const refusals = { 400: { description: 'a field is invalid (named)' }, 401: { description: 'no valid token' }, 403: { description: 'not an operator, or (a change) not of this app' } };
const missing = { 404: { description: "no such budget (another app's answers the same)" } };

const list = {
  method: 'get',
  path: BUDGETS_PATH,
  access: 'operator',
  summary: "Budgets of the token's apps, with what each has spent and has left now",
  tags,
  query: b.BudgetsQuery,
  responses: { 200: { description: 'the budgets', schema: b.BudgetsReply }, ...refusals },
} as const satisfies RouteSpec;
const putApp = {
  method: 'put',
  path: `${BUDGETS_PATH}/{app_id}`,
  access: 'operator',
  summary: "Set the app's budget (replaces it whole: a limit left out is no limit)",
  tags,
  params: b.AppBudgetParams,
  body: b.Limits,
  examples: { daily: { summary: '1M tokens and $20 a day', value: { tokens_per_day: 1_000_000, cost_usd_per_day: 20 } } },
  responses: { 200: { description: 'the budget as set', schema: b.Budget }, ...refusals },
} as const satisfies RouteSpec;
const getApp = { method: 'get', path: `${BUDGETS_PATH}/{app_id}`, access: 'operator', summary: "The app's budget, spent and left", tags, params: b.AppBudgetParams, responses: { 200: { description: 'the budget', schema: b.Budget }, ...refusals, ...missing } } as const satisfies RouteSpec;
const deleteApp = { method: 'delete', path: `${BUDGETS_PATH}/{app_id}`, access: 'operator', summary: "Remove the app's budget (no limit)", tags, params: b.AppBudgetParams, responses: { 204: { description: 'removed' }, ...refusals, ...missing } } as const satisfies RouteSpec;
const putUser = {
  method: 'put',
  path: `${BUDGETS_PATH}/{app_id}/users/{user_id}`,
  access: 'operator',
  summary: "Set a user's budget, or with `*` every user's (each counted apart); a user's own replaces the every-user one whole",
  tags,
  params: b.UserBudgetParams,
  body: b.Limits,
  examples: { each: { summary: 'Each user: 50k tokens a day, 10 turns a minute', value: { tokens_per_day: 50_000, turns_per_minute: 10 } } },
  responses: { 200: { description: 'the budget as set', schema: b.Budget }, ...refusals },
} as const satisfies RouteSpec;
const getUser = {
  method: 'get',
  path: `${BUDGETS_PATH}/{app_id}/users/{user_id}`,
  access: 'operator',
  summary: "The budget that applies to a user (theirs, else every user's), what they spent and have left, beside the app's",
  tags,
  params: b.UserBudgetParams,
  responses: { 200: { description: "the user's budget as it applies", schema: b.UserBudgetReply }, ...refusals, ...missing },
} as const satisfies RouteSpec;
const deleteUser = { method: 'delete', path: `${BUDGETS_PATH}/{app_id}/users/{user_id}`, access: 'operator', summary: "Remove a user's own budget (the every-user one applies again), or with `*` every user's", tags, params: b.UserBudgetParams, responses: { 204: { description: 'removed' }, ...refusals, ...missing } } as const satisfies RouteSpec;

export const budgetRoutes: RouteSpec[] = [list, getApp, putApp, deleteApp, getUser, putUser, deleteUser];

export interface BudgetRouteDeps {
  budgetStore: BudgetStore;
  budgets: BudgetMeter;
}

/**
 * The operator's budgets (the guards check the token and the operator role), within the token's
 * apps: another app's budget reads as a missing one; setting one there is refused.
 */
export function budgetsRoutes(routes: RuntimeRoutes, d: BudgetRouteDeps): void {
  const reads = (p: Principal | undefined, appId: string) => !p || p.anonymous || canUseApp(p, appId);
  const writes = (p: Principal | undefined, appId: string) => {
    if (!reads(p, appId)) throw new Forbidden(`token does not allow app "${appId}"`);
  };
  const notFound = (appId: string, userId: string) => new NotFound(userId === APP_WIDE ? `app "${appId}" has no budget` : `app "${appId}" has no budget for user "${userId}"`);

  const view = async (row: BudgetRow): Promise<b.Budget> => {
    const everyone = row.userId === b.EVERY_USER;
    const spent = everyone ? null : await d.budgets.spent(row.appId, row.userId === APP_WIDE ? 'app' : { user: row.userId });
    return { app_id: row.appId, user_id: row.userId === APP_WIDE ? null : row.userId, limits: row.limits, updated_at: row.updatedAt.toISOString(), spent, remaining: spent && remainingOf(row.limits, spent) };
  };
  const find = async (appId: string, userId: string): Promise<BudgetRow> => {
    const row = (await d.budgetStore.forUser(appId, userId)).find((r) => r.userId === userId);
    if (!row) throw notFound(appId, userId);
    return row;
  };

  routes.route(list, async ({ query }, req, res) => {
    const p = req.principal;
    const everything = !p || p.anonymous || p.apps === '*';
    const apps = query.app_id ? (reads(p, query.app_id) ? [query.app_id] : []) : everything ? null : (p.apps as string[]);
    const rows = apps === null ? await d.budgetStore.all(1_000) : await d.budgetStore.list(apps);
    const reply: b.BudgetsReply = { budgets: await Promise.all(rows.map(view)) };
    res.json(reply);
  });
  routes.route(getApp, async ({ params: { app_id } }, req, res) => {
    if (!reads(req.principal, app_id)) throw notFound(app_id, APP_WIDE);
    res.json(await view(await find(app_id, APP_WIDE)));
  });
  routes.route(putApp, async ({ params: { app_id }, body }, req, res) => {
    writes(req.principal, app_id);
    // turns_per_minute is a user's rate: the app's budget has none.
    const { turns_per_minute: _, ...limits } = body;
    const row = await d.budgetStore.put(app_id, APP_WIDE, limits);
    await d.budgets.changed(app_id);
    res.json(await view(row));
  });
  routes.route(deleteApp, async ({ params: { app_id } }, req, res) => {
    if (!reads(req.principal, app_id) || !(await d.budgetStore.delete(app_id, APP_WIDE))) throw notFound(app_id, APP_WIDE);
    await d.budgets.changed(app_id);
    res.status(204).end();
  });
  routes.route(getUser, async ({ params: { app_id, user_id } }, req, res) => {
    if (!reads(req.principal, app_id)) throw notFound(app_id, user_id);
    if (user_id === b.EVERY_USER) {
      const row = await find(app_id, user_id);
      const reply: b.UserBudgetReply = { app_id, user_id, source: 'every_user', user: await view(row), app: null };
      return void res.json(reply);
    }
    const applied = await d.budgets.applied(app_id, user_id);
    // A user with no budget of their own or every user's still has spend to show: an empty budget.
    const own = applied.user ?? { appId: app_id, userId: user_id, limits: {}, updatedAt: new Date(0) };
    const userView = await view({ ...own, userId: user_id });
    const reply: b.UserBudgetReply = { app_id, user_id, source: applied.source, user: userView, app: applied.app && (await view(applied.app)) };
    res.json(reply);
  });
  routes.route(putUser, async ({ params: { app_id, user_id }, body }, req, res) => {
    writes(req.principal, app_id);
    const row = await d.budgetStore.put(app_id, user_id, body);
    await d.budgets.changed(app_id);
    res.json(await view(row));
  });
  routes.route(deleteUser, async ({ params: { app_id, user_id } }, req, res) => {
    if (!reads(req.principal, app_id) || !(await d.budgetStore.delete(app_id, user_id))) throw notFound(app_id, user_id);
    await d.budgets.changed(app_id);
    res.status(204).end();
  });
}

function remainingOf(l: b.Limits, spent: { day: b.Spend; month: b.Spend }): z.infer<typeof b.Budget>['remaining'] {
  const left = (limit: number | null | undefined, used: number) => (limit == null ? null : Math.max(0, limit - used));
  return {
    tokens_per_day: left(l.tokens_per_day, spent.day.tokens),
    tokens_per_month: left(l.tokens_per_month, spent.month.tokens),
    cost_usd_per_day: left(l.cost_usd_per_day, spent.day.cost_usd),
    cost_usd_per_month: left(l.cost_usd_per_month, spent.month.cost_usd),
  };
}
