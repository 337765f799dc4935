/**
 * Budgets, enforced: every model call of a turn asks `admit` first and reports its usage to the
 * ticket it got; every HTTP or socket message that makes work asks `check`. Spend is counted in
 * Redis per UTC day and calendar month, for the app and for the user, whatever budgets exist (so
 * a budget set at noon knows the morning). Limits come from PostgreSQL (BudgetStore), cached per
 * app under a version kept in Redis that every change bumps: a change applies to the next call.
 *
 * Across workers, a call is admitted when it fits: spent, plus what calls in flight hold (each
 * holds the largest call seen so far for its app or user), plus itself, stays within every limit.
 * A call that does not fit still runs when its worker has no other call of that budget in flight,
 * so a budget crossed by concurrent turns overshoots by at most one call per worker (and by what a
 * call uses beyond the largest seen before). A worker with calls in flight waits for one of them
 * instead. A hold whose worker died expires (HOLD_MS).
 */
import type { RedisClient } from '@tessera/kit';
import { budgets, type Usage } from '@tessera/contracts';
import type { Logger, Pricer } from '@tessera/kit';
import { APP_WIDE, type BudgetRow, type BudgetStore } from '../store/budgets';

const NANO = 1e9;
/** How long a call's hold counts when its worker never releases it (it died mid-call). */
const HOLD_MS = 10 * 60_000;
/** A worker waiting for one of its own calls to end looks again after this long at the latest. */
const WAIT_MS = 1_000;
/** Users whose limits are cached per app before the cache starts over. */
const MAX_CACHED_USERS = 10_000;

export type Window = 'day' | 'month';
type Measure = 'tokens' | 'cost';

/** Why a call or a message may not go on, worded for the user, with when it may. */
export class BudgetRefusal {
  readonly ok = false;
  constructor(
    readonly message: string,
    /** Seconds until the spent window starts anew. */
    readonly retryAfterS: number,
  ) {}
}

/** One admitted model call: `done` counts what it used (or nothing, when it failed before any usage). */
export interface BudgetTicket {
  readonly ok: true;
  done(usage: Usage | undefined, model: string, provider: string): Promise<void>;
}

interface Gate {
  /** `app` or `u:<user id>`: the part of the Redis keys after the app's. */
  subject: string;
  /** Whose budget it is, for a refusal's wording. */
  owner: 'app' | 'user';
  limits: budgets.Limits;
}

/** The windows a moment falls in: their key parts, ends and how long their counters are kept. */
export function windowsAt(ms: number): Record<Window, { key: string; resetsAt: number; ttlS: number }> {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const day = d.getUTCDate();
  const pad = (n: number) => String(n).padStart(2, '0');
  return {
    day: { key: `d${y}${pad(m + 1)}${pad(day)}`, resetsAt: Date.UTC(y, m, day + 1), ttlS: 2 * 86_400 },
    month: { key: `m${y}${pad(m + 1)}`, resetsAt: Date.UTC(y, m + 1, 1), ttlS: 35 * 86_400 },
  };
}

const LIMIT_OF: Record<Window, Record<Measure, keyof budgets.Limits>> = {
  day: { tokens: 'tokens_per_day', cost: 'cost_usd_per_day' },
  month: { tokens: 'tokens_per_month', cost: 'cost_usd_per_month' },
};

const hasSpendLimit = (l: budgets.Limits) => l.tokens_per_day != null || l.tokens_per_month != null || l.cost_usd_per_day != null || l.cost_usd_per_month != null;

/**
 * KEYS, per gate: spend of the day, spend of the month, holds, largest call.
 * ARGV: now ms, hold member, hold expiry, gate count, then per gate: token limit of the day, of the
 * month, nano-USD limit of the day, of the month (-1: none), and this worker's calls in flight.
 * Returns {'ok'}, {'wait'}, or {'over', gate index (1-based), window ('day'|'month'), measure}.
 */
const ADMIT = `
local now, member, expiry, gates = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local wait = false
local holds = {}
for g = 1, gates do
  local k = (g - 1) * 4
  local a = 4 + (g - 1) * 5
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
  local heldT, heldN, unknown = 0, 0, 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[k + 3], 0, -1)) do
    local t, n = string.match(m, '|(%d+)|(%d+)$')
    if t then heldT = heldT + tonumber(t); heldN = heldN + tonumber(n) else unknown = unknown + 1 end
  end
  local largest = redis.call('HMGET', KEYS[k + 4], 'tokens', 'nano')
  local estT, estN = tonumber(largest[1]), tonumber(largest[2])
  local fits = estT ~= nil
  -- A call admitted before any had ended holds what the largest since is: it will spend about as much.
  if fits then heldT = heldT + unknown * estT; heldN = heldN + unknown * (estN or 0) end
  local windows = {'day', 'month'}
  for w = 1, 2 do
    local spent = redis.call('HMGET', KEYS[k + w], 'tokens', 'nano')
    local sT, sN = tonumber(spent[1]) or 0, tonumber(spent[2]) or 0
    local lT, lN = tonumber(ARGV[a + w]), tonumber(ARGV[a + 2 + w])
    if lT >= 0 and sT >= lT then return {'over', g, windows[w], 'tokens'} end
    if lN >= 0 and sN >= lN then return {'over', g, windows[w], 'cost'} end
    if fits and lT >= 0 and sT + heldT + estT > lT then fits = false end
    if fits and lN >= 0 and sN + heldN + estN > lN then fits = false end
  end
  if not fits and tonumber(ARGV[a + 5]) > 0 then wait = true end
  -- '?': no call of this budget has ended yet, so the hold is counted at the largest once one has.
  holds[g] = estT and (estT .. '|' .. (estN or 0)) or '?|?'
end
if wait then return {'wait'} end
for g = 1, gates do
  local k = (g - 1) * 4
  redis.call('ZADD', KEYS[k + 3], expiry, member .. '|' .. holds[g])
  redis.call('PEXPIRE', KEYS[k + 3], ${HOLD_MS})
end
return {'ok'}
`;

/** How long a call's record is remembered, so that the same record sent again counts nothing (ioredis resends within seconds). */
const RECORDED_TTL_MS = 60_000;

/**
 * KEYS, per subject: spend of the day, of the month, holds, largest call; then the call's
 * recorded-mark. ARGV: tokens, nano-USD, day counter TTL, month counter TTL, the hold member (or ''
 * when nothing was held), subjects. A record sent again (ioredis sends a command again when its
 * connection drops before the answer) finds the call's mark and counts nothing twice.
 */
const RECORD = `
if not redis.call('SET', KEYS[#KEYS], 1, 'NX', 'PX', ${RECORDED_TTL_MS}) then return 0 end
local tokens, nano, dayTtl, monthTtl, member, subjects = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
for s = 1, subjects do
  local k = (s - 1) * 4
  if tokens > 0 or nano > 0 then
    redis.call('HINCRBY', KEYS[k + 1], 'tokens', tokens); redis.call('HINCRBY', KEYS[k + 1], 'nano', nano); redis.call('EXPIRE', KEYS[k + 1], dayTtl)
    redis.call('HINCRBY', KEYS[k + 2], 'tokens', tokens); redis.call('HINCRBY', KEYS[k + 2], 'nano', nano); redis.call('EXPIRE', KEYS[k + 2], monthTtl)
  end
  if member ~= '' then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[k + 3], 0, -1)) do
      if string.sub(m, 1, #member + 1) == member .. '|' then redis.call('ZREM', KEYS[k + 3], m) end
    end
  end
  local largest = redis.call('HMGET', KEYS[k + 4], 'tokens', 'nano')
  if tokens > (tonumber(largest[1]) or -1) then redis.call('HSET', KEYS[k + 4], 'tokens', tokens) end
  if nano > (tonumber(largest[2]) or -1) then redis.call('HSET', KEYS[k + 4], 'nano', nano) end
  redis.call('EXPIRE', KEYS[k + 4], monthTtl)
end
return 1
`;

/** This worker's calls of one budget: admitted and not ended, asking now, and admissions waiting for one to end. */
interface Flight {
  count: number;
  asking: number;
  waiters: Set<() => void>;
}

function wakeAll(flights: Flight[]): void {
  for (const f of flights) for (const wake of [...f.waiters]) wake();
}

interface CachedLimits {
  version: string;
  appWide: BudgetRow | null;
  everyUser: BudgetRow | null;
  users: Map<string, BudgetRow | null>;
}

/** The limits that apply to a user, and whose they are. */
export interface AppliedLimits {
  app: BudgetRow | null;
  user: BudgetRow | null;
  source: 'user' | 'every_user' | 'none';
}

export class BudgetMeter {
  private readonly cache = new Map<string, CachedLimits>();
  /** This worker's calls in flight per budget (app or user), and who waits for one to end. */
  private readonly inFlight = new Map<string, Flight>();
  private tickets = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly store: BudgetStore,
    private readonly prefix: string,
    private readonly pricer: Pricer,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    redis.defineCommand('tesseraBudgetAdmit', { lua: ADMIT });
    redis.defineCommand('tesseraBudgetRecord', { lua: RECORD });
  }

  private key(appId: string, rest: string): string {
    // One hash tag per app: all of an app's counters share a Redis Cluster slot, so one script reads them.
    return `${this.prefix}:budget:{${appId}}:${rest}`;
  }

  private gateKeys(appId: string, subject: string, at: number): string[] {
    const w = windowsAt(at);
    return [this.key(appId, `spend:${subject}:${w.day.key}`), this.key(appId, `spend:${subject}:${w.month.key}`), this.key(appId, `held:${subject}`), this.key(appId, `largest:${subject}`)];
  }

  /** Called after a change is stored: the next check, on any instance, reads the limits afresh. */
  async changed(appId: string): Promise<void> {
    await this.redis.incr(this.key(appId, 'version'));
  }

  /** The limits that apply to a user now (cached until a change). */
  async applied(appId: string, userId: string): Promise<AppliedLimits> {
    const version = (await this.redis.get(this.key(appId, 'version'))) ?? '0';
    let c = this.cache.get(appId);
    if (!c || c.version !== version || c.users.size > MAX_CACHED_USERS) {
      c = undefined;
      this.cache.delete(appId);
    }
    if (!c || !c.users.has(userId)) {
      const rows = await this.store.forUser(appId, userId);
      const find = (u: string) => rows.find((r) => r.userId === u) ?? null;
      if (!c) {
        c = { version, appWide: find(APP_WIDE), everyUser: find(budgets.EVERY_USER), users: new Map() };
        this.cache.set(appId, c);
      }
      c.users.set(userId, find(userId));
    }
    const own = userId === budgets.EVERY_USER ? null : (c.users.get(userId) ?? null);
    const user = own ?? c.everyUser;
    return { app: c.appWide, user, source: own ? 'user' : c.everyUser ? 'every_user' : 'none' };
  }

  private gatesOf(limits: AppliedLimits, userId: string): Gate[] {
    const gates: Gate[] = [];
    if (limits.app && hasSpendLimit(limits.app.limits)) gates.push({ subject: 'app', owner: 'app', limits: limits.app.limits });
    if (limits.user && hasSpendLimit(limits.user.limits)) gates.push({ subject: `u:${userId}`, owner: 'user', limits: limits.user.limits });
    return gates;
  }

  /** Before a message makes work: a refusal when a budget of the app or the user is spent, else null. Takes nothing. */
  async check(appId: string, userId: string, applied?: AppliedLimits): Promise<BudgetRefusal | null> {
    const gates = this.gatesOf(applied ?? (await this.applied(appId, userId)), userId);
    if (!gates.length) return null;
    const at = this.now();
    const pipeline = this.redis.pipeline();
    for (const g of gates) {
      const [day, month] = this.gateKeys(appId, g.subject, at);
      pipeline.hmget(day, 'tokens', 'nano').hmget(month, 'tokens', 'nano');
    }
    const replies = (await pipeline.exec()) ?? [];
    for (const [i, g] of gates.entries()) {
      for (const [j, window] of (['day', 'month'] as const).entries()) {
        const [err, v] = replies[i * 2 + j] ?? [];
        if (err) throw err;
        const [t, n] = (v as (string | null)[]) ?? [];
        const over = exceeded(g.limits, window, Number(t ?? 0), Number(n ?? 0));
        if (over) return this.refusal(g, window, over, at);
      }
    }
    return null;
  }

  /**
   * Before one model call of a turn: a ticket to report its usage to, or a refusal (a budget is
   * spent). Waits while the call does not fit and this worker has another call of that budget in flight.
   */
  async admit(appId: string, userId: string): Promise<BudgetTicket | BudgetRefusal> {
    const gates = this.gatesOf(await this.applied(appId, userId), userId);
    const subjects = ['app', `u:${userId}`];
    if (!gates.length) return this.ticket(appId, subjects, '', []);
    const member = this.recordId();
    const local = gates.map((g) => this.flight(appId, g.subject));
    for (;;) {
      const at = this.now();
      const keys = gates.flatMap((g) => this.gateKeys(appId, g.subject, at));
      const args: (string | number)[] = [at, member, at + HOLD_MS, gates.length];
      // Another admission of this worker still waiting for its answer counts as in flight: two asked
      // at once must not both run as the one call that does not fit.
      for (const f of local) f.asking++;
      for (const [i, g] of gates.entries()) args.push(limitOf(g.limits.tokens_per_day), limitOf(g.limits.tokens_per_month), nanoUsd(g.limits.cost_usd_per_day), nanoUsd(g.limits.cost_usd_per_month), local[i].count + local[i].asking - 1);
      let reply: (string | number)[];
      try {
        reply = (await (this.redis as RedisWithBudgets).tesseraBudgetAdmit(keys.length, ...keys, ...args)) as (string | number)[];
      } finally {
        for (const f of local) f.asking--;
      }
      if (reply[0] === 'ok') {
        for (const f of local) f.count++;
        return this.ticket(appId, subjects, member, local);
      }
      wakeAll(local);
      if (reply[0] === 'over') return this.refusal(gates[Number(reply[1]) - 1], reply[2] as Window, reply[3] as Measure, at);
      // Another call of this worker on the budget is in flight: the next to end tells us (or a while passes).
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          for (const f of local) f.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, WAIT_MS);
        for (const f of local) f.waiters.add(wake);
      });
    }
  }

  /** What a user (or the app, `subject` 'app') spent in the current day and month. */
  async spent(appId: string, subject: 'app' | { user: string }): Promise<Record<Window, budgets.Spend>> {
    const at = this.now();
    const w = windowsAt(at);
    const [day, month] = this.gateKeys(appId, subject === 'app' ? 'app' : `u:${subject.user}`, at);
    const replies = (await this.redis.pipeline().hmget(day, 'tokens', 'nano').hmget(month, 'tokens', 'nano').exec()) ?? [];
    const spend = (i: number, resetsAt: number): budgets.Spend => {
      const [t, n] = (replies[i]?.[1] as (string | null)[] | undefined) ?? [];
      return { tokens: Number(t ?? 0), cost_usd: Number(n ?? 0) / NANO, resets_at: new Date(resetsAt).toISOString() };
    };
    return { day: spend(0, w.day.resetsAt), month: spend(1, w.month.resetsAt) };
  }

  private flight(appId: string, subject: string) {
    const k = `${appId}\u0000${subject}`;
    let f = this.inFlight.get(k);
    if (!f) {
      // Budgets of users long gone: idle entries are dropped once there are many.
      if (this.inFlight.size >= MAX_CACHED_USERS) for (const [key, idle] of this.inFlight) if (!idle.count && !idle.asking && !idle.waiters.size) this.inFlight.delete(key);
      f = { count: 0, asking: 0, waiters: new Set() };
      this.inFlight.set(k, f);
    }
    return f;
  }

  private ticket(appId: string, subjects: string[], member: string, local: Flight[]): BudgetTicket {
    let settled = false;
    return {
      ok: true,
      done: async (usage, model, provider) => {
        if (settled) return;
        settled = true;
        try {
          const tokens = usage?.total_tokens ?? 0;
          const cost = usage ? this.costOf(usage, model, provider) : 0;
          if (tokens > 0 || cost > 0 || member) {
            const at = this.now();
            const w = windowsAt(at);
            const keys = [...subjects.flatMap((s) => this.gateKeys(appId, s, at)), this.key(appId, `recorded:${member || this.recordId()}`)];
            await (this.redis as RedisWithBudgets).tesseraBudgetRecord(keys.length, ...keys, tokens, Math.round(cost * NANO), w.day.ttlS, w.month.ttlS, member, subjects.length);
          }
        } catch (e) {
          // A turn never fails for its metering: the call ran; its spend may go uncounted.
          this.logger.warn('budget spend not recorded', { app_id: appId, error: (e as Error).message });
        } finally {
          for (const f of local) f.count--;
          wakeAll(local);
        }
      },
    };
  }

  /** A call recorded without a hold: an id of its own (the hold member's form). */
  private recordId(): string {
    return `${process.pid}:${++this.tickets}:${Math.random().toString(36).slice(2, 8)}`;
  }

  private costOf(u: Usage, model: string, provider: string): number {
    const cost = this.pricer.costOf(
      { input: u.prompt_tokens, output: u.completion_tokens, cacheRead: u.cache_read_tokens, cacheWrite: u.cache_write_tokens, reasoning: u.reasoning_tokens, model, provider },
      new Date(this.now()),
    );
    // A model without a known price counts toward token limits only.
    return cost ?? 0;
  }

  private refusal(g: Gate, window: Window, measure: Measure, at: number): BudgetRefusal {
    const resetsAt = windowsAt(at)[window].resetsAt;
    const limit = g.limits[LIMIT_OF[window][measure]];
    const what = measure === 'tokens' ? `${Number(limit).toLocaleString('en-US')} tokens` : `$${Number(limit).toFixed(2)}`;
    const message = `${g.owner === 'app' ? "The app's" : 'Your'} ${window === 'day' ? 'daily' : 'monthly'} budget of ${what} is spent; it resets at ${new Date(resetsAt).toISOString()}`;
    return new BudgetRefusal(message, Math.max(1, Math.ceil((resetsAt - at) / 1000)));
  }
}

function exceeded(l: budgets.Limits, window: Window, tokens: number, nano: number): Measure | null {
  const t = l[LIMIT_OF[window].tokens];
  const c = l[LIMIT_OF[window].cost];
  if (t != null && tokens >= t) return 'tokens';
  if (c != null && nano >= c * NANO) return 'cost';
  return null;
}

const limitOf = (v: number | null | undefined) => (v == null ? -1 : v);
const nanoUsd = (v: number | null | undefined) => (v == null ? -1 : Math.round(v * NANO));

type RedisWithBudgets = RedisClient & {
  tesseraBudgetAdmit(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  tesseraBudgetRecord(numKeys: number, ...args: (string | number)[]): Promise<unknown>;
};
