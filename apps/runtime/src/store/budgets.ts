import type { Pool } from 'pg';
import type { budgets } from '@tessera/contracts';

/** The app as a whole, in a budget row's user_id. */
export const APP_WIDE = '';

export interface BudgetRow {
  appId: string;
  /** APP_WIDE, `*` (every user) or a user id. */
  userId: string;
  limits: budgets.Limits;
  updatedAt: Date;
}

interface Raw {
  app_id: string;
  user_id: string;
  tokens_per_day: string | null;
  tokens_per_month: string | null;
  cost_usd_per_day: number | null;
  cost_usd_per_month: number | null;
  turns_per_minute: number | null;
  updated_at: Date;
}

const COLUMNS = 'app_id, user_id, tokens_per_day, tokens_per_month, cost_usd_per_day, cost_usd_per_month, turns_per_minute, updated_at';

/** Budgets as operators set them: one row per app and subject, replaced whole. */
export class BudgetStore {
  constructor(private readonly pool: Pool) {}

  /** Every budget of these apps, ordered by app, then the app's own, every user's, then users by id. */
  async list(appIds: readonly string[]): Promise<BudgetRow[]> {
    const r = await this.pool.query<Raw>({
      name: 'budgets-of-apps',
      text: `SELECT ${COLUMNS} FROM budgets WHERE app_id = ANY($1) ORDER BY app_id, user_id`,
      values: [appIds],
    });
    return r.rows.map(toRow);
  }

  /** Every budget (an operator whose token reaches every app: auth disabled in development). */
  async all(limit: number): Promise<BudgetRow[]> {
    const r = await this.pool.query<Raw>({ name: 'budgets-all', text: `SELECT ${COLUMNS} FROM budgets ORDER BY app_id, user_id LIMIT $1`, values: [limit] });
    return r.rows.map(toRow);
  }

  /** What may apply to a user of an app: the app's row, the every-user row and the user's own (each may be missing). */
  async forUser(appId: string, userId: string): Promise<BudgetRow[]> {
    const r = await this.pool.query<Raw>({
      name: 'budgets-for-user',
      text: `SELECT ${COLUMNS} FROM budgets WHERE app_id = $1 AND user_id IN ('', '*', $2)`,
      values: [appId, userId],
    });
    return r.rows.map(toRow);
  }

  async put(appId: string, userId: string, l: budgets.Limits): Promise<BudgetRow> {
    const r = await this.pool.query<Raw>({
      name: 'budget-put',
      text: `INSERT INTO budgets (app_id, user_id, tokens_per_day, tokens_per_month, cost_usd_per_day, cost_usd_per_month, turns_per_minute, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now())
             ON CONFLICT (app_id, user_id) DO UPDATE SET tokens_per_day = $3, tokens_per_month = $4, cost_usd_per_day = $5,
               cost_usd_per_month = $6, turns_per_minute = $7, updated_at = now()
             RETURNING ${COLUMNS}`,
      values: [appId, userId, l.tokens_per_day ?? null, l.tokens_per_month ?? null, l.cost_usd_per_day ?? null, l.cost_usd_per_month ?? null, l.turns_per_minute ?? null],
    });
    return toRow(r.rows[0]);
  }

  /** False when there was no such budget. */
  async delete(appId: string, userId: string): Promise<boolean> {
    const r = await this.pool.query({ name: 'budget-delete', text: 'DELETE FROM budgets WHERE app_id = $1 AND user_id = $2', values: [appId, userId] });
    return (r.rowCount ?? 0) > 0;
  }
}

function toRow(r: Raw): BudgetRow {
  const limits: budgets.Limits = {};
  if (r.tokens_per_day !== null) limits.tokens_per_day = Number(r.tokens_per_day);
  if (r.tokens_per_month !== null) limits.tokens_per_month = Number(r.tokens_per_month);
  if (r.cost_usd_per_day !== null) limits.cost_usd_per_day = r.cost_usd_per_day;
  if (r.cost_usd_per_month !== null) limits.cost_usd_per_month = r.cost_usd_per_month;
  if (r.turns_per_minute !== null) limits.turns_per_minute = r.turns_per_minute;
  return { appId: r.app_id, userId: r.user_id, limits, updatedAt: r.updated_at };
}
