import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig, PriceOverridesEnv, withSchema } from '@tessera/kit';

/**
 * `app1:key1,app2:key2`: the key an outside agent of each app sends as `x-ingest-key`. Parsed
 * into key → app, so a request's key is looked up without walking the list.
 */
const IngestKeys = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const keys = new Map<string, string>();
    for (const pair of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const at = pair.indexOf(':');
      const app = pair.slice(0, at).trim();
      const key = pair.slice(at + 1).trim();
      // The value is a secret: the message names the position, never the text.
      if (at <= 0 || key.length < 16) ctx.addIssue({ code: 'custom', message: `entry ${keys.size + 1} must be <app_id>:<key of at least 16 characters>` });
      else keys.set(key, app);
    }
    return keys;
  });

/** The observability service's environment. Local defaults make `npm start` work with no .env. */
export const ObservabilityEnv = BaseEnv.extend({
  PORT: env.port(8765),
  DATABASE_URL: z
    .url()
    .default('postgresql://tessera:tessera@127.0.0.1:5432/tessera')
    .transform((u) => withSchema(u, 'observability')),
  /** BullMQ prefix: must equal the runtime's, whose `observability-events` queue this service consumes. */
  BULL_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]+$/).default('tessera'),
  /** Consume the queue in this process (a deployment may run the consumer apart: `src/worker.ts`). */
  INGEST_WORKER: env.bool(true),
  /**
   * Queue jobs (batches of up to 1,000 events) a process holds at once; those that arrive while
   * a transaction is in flight are written together in the next (src/ingest/group-commit.ts).
   */
  INGEST_CONCURRENCY: env.int(32, 1),
  /** Largest `POST /events` body (a batch of up to 1,000 events). */
  INGEST_BODY_LIMIT: z.string().default('3.5mb'),
  INGEST_KEYS: IngestKeys,
  /** Token claim holding the caller's roles (a string or an array), and the role an operator needs. */
  OPERATOR_CLAIM: z.string().min(1).default('roles'),
  OPERATOR_ROLE: z.string().min(1).default('operator'),
  /** Sessions untouched for this many days are deleted with their events; 0 keeps everything. */
  RETENTION_DAYS: env.int(30, 0),
  RETENTION_INTERVAL_MS: env.int(60 * 60 * 1000, 1000),
  /** Sessions deleted per statement, so that retention never holds long locks. */
  RETENTION_BATCH: env.int(500, 1),
  /** An outside session (hook, OpenTelemetry) with no event for this long is closed as finished; 0 never closes one. */
  SESSION_IDLE_MS: env.int(30 * 60 * 1000, 0),
  /** How often idle sessions are looked for. */
  SESSION_IDLE_SWEEP_MS: env.int(60 * 1000, 100),
  WS_MAX_PAYLOAD: env.int(64 * 1024, 1024),
  WS_HEARTBEAT_MS: env.int(30_000, 50),
  WS_MESSAGES_PER_SECOND: env.int(20, 1),
  WS_MESSAGE_BURST: env.int(40, 1),
  /**
   * Bytes waiting to go out to a live socket past which it is behind: it gets no events of sessions
   * it did not subscribe to (an `events_dropped` notice names them once it is below half of this),
   * and its `session_updated` are coalesced, latest per session. Below the hub's 4 MB, past which
   * any socket is closed with 1013, so that a socket watching everything never reaches it.
   */
  WS_BEHIND_BYTES: z.coerce.number().int().min(1024).max(4 * 1024 * 1024 - 1, 'must be below 4 MB, where the socket is closed').default(1024 * 1024),
  DB_POOL_SIZE: env.int(10, 2),
  /** Per-model prices (USD per million tokens) that win over @pydantic/genai-prices' table. */
  PRICE_OVERRIDES: PriceOverridesEnv,
}).superRefine(checkBaseEnv);
export type ObservabilityConfig = z.infer<typeof ObservabilityEnv>;

export const loadObservabilityConfig = (e?: Record<string, string | undefined>) => loadConfig(ObservabilityEnv, e);
