import { z } from 'zod';
import { AppId, UserId } from '../common/ids';

/**
 * Budgets (runtime, `/api/budgets`): what an app, or each of its users, may spend on model calls
 * per UTC day and calendar month (tokens, US dollars) and how many turns a user may start per
 * minute. Checked before every model call, on every worker; spend counts every call, budget or not.
 */

/** `*` in a user's place: the budget each user of the app has, unless one of their own replaces it. */
export const EVERY_USER = '*';

const Tokens = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Usd = z.number().positive().max(1e9);

/** A missing (or null) limit is no limit. */
export const Limits = z
  .strictObject({
    tokens_per_day: Tokens.nullish(),
    tokens_per_month: Tokens.nullish(),
    cost_usd_per_day: Usd.nullish().describe('US dollars; a call whose model has no known price counts toward token limits only'),
    cost_usd_per_month: Usd.nullish(),
    turns_per_minute: z.number().int().positive().max(100_000).nullish().describe("a user's budgets only: turns started (messages, answers, new chats) per minute"),
  })
  .meta({ id: 'BudgetLimits' });
export type Limits = z.infer<typeof Limits>;

/** What was spent in the current window and when it starts anew. */
export const Spend = z.object({ tokens: z.number().int(), cost_usd: z.number(), resets_at: z.string() }).meta({ id: 'BudgetSpend' });
export type Spend = z.infer<typeof Spend>;

export const Budget = z
  .object({
    app_id: z.string(),
    /** null: the app as a whole; `*`: each user of the app; else that user. */
    user_id: z.string().nullable(),
    limits: Limits,
    updated_at: z.string(),
    /** Spent now (the app's, or the user's; none for `*`, which is everyone's). */
    spent: z.object({ day: Spend, month: Spend }).nullable(),
    /** What is left of each limit set (0 once spent); null for no limit. */
    remaining: z
      .object({ tokens_per_day: z.number().nullable(), tokens_per_month: z.number().nullable(), cost_usd_per_day: z.number().nullable(), cost_usd_per_month: z.number().nullable() })
      .nullable(),
  })
  .meta({ id: 'Budget' });
export type Budget = z.infer<typeof Budget>;

export const BudgetsQuery = z.object({ app_id: AppId.optional().describe("one of the token's apps (default: all of them)") });
export const BudgetsReply = z.object({ budgets: z.array(Budget) }).meta({ id: 'BudgetsReply' });
export type BudgetsReply = z.infer<typeof BudgetsReply>;

export const AppBudgetParams = z.object({ app_id: AppId });
export const UserBudgetParams = z.object({ app_id: AppId, user_id: z.union([z.literal(EVERY_USER), UserId]).describe('a user id, or * for every user') });

/** A user's budgets as they apply: their own (else the app's every-user budget), beside the app's. */
export const UserBudgetReply = z
  .object({
    app_id: z.string(),
    user_id: z.string(),
    /** Whose limits apply to the user: their own, the every-user budget, or none. */
    source: z.enum(['user', 'every_user', 'none']),
    user: Budget,
    app: Budget.nullable(),
  })
  .meta({ id: 'UserBudgetReply' });
export type UserBudgetReply = z.infer<typeof UserBudgetReply>;

/** `chat.error`, HTTP 429 and each protocol's error carry this code when a budget is spent. */
export const BUDGET_EXCEEDED = 'BUDGET_EXCEEDED';
