import { resolve } from 'node:path';
import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig, PriceOverridesEnv, SSE_KEEP_ALIVE_MS, withSchema } from '@tessera/kit';

/** The runtime's environment. Local defaults make `npm start` work with no .env. */
export const RuntimeEnv = BaseEnv.extend({
  PORT: env.port(8000),
  DATABASE_URL: z
    .url()
    .default('postgresql://tessera:tessera@127.0.0.1:5432/tessera')
    .transform((u) => withSchema(u, 'runtime')),
  /** Prefix of BullMQ keys (a test or a second deployment on one Redis uses its own). */
  BULL_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]+$/).default('tessera'),
  WORKFLOWS_DIR: z.string().default(resolve(__dirname, '../workflows')),
  /** Concurrent turns per worker process. */
  WORKER_CONCURRENCY: env.int(200, 1),
  /** Run the turn worker inside the HTTP process too (single-process deployments). */
  EMBEDDED_WORKER: env.bool(false),
  UPLOAD_MAX_BYTES: env.int(10 * 1024 * 1024, 1),
  WS_MAX_PAYLOAD: env.int(256 * 1024, 1024),
  WS_HEARTBEAT_MS: env.int(30_000, 50),
  /** How often an open event stream (AG-UI, A2A) gets an SSE comment line, so that a proxy does not close it while the agent is quiet. */
  SSE_KEEP_ALIVE_MS: env.int(SSE_KEEP_ALIVE_MS, 50),
  /** Messages a chat socket may send per second, with bursts up to WS_MESSAGE_BURST; past it: chat.error RATE_LIMITED. */
  WS_MESSAGES_PER_SECOND: env.int(20, 1),
  WS_MESSAGE_BURST: env.int(40, 1),
  /** Messages that make work (input, tool answers, new chats) per user per minute, over all their sockets and the HTTP, AG-UI, A2A and MCP routes; 0: no limit. */
  WS_USER_MESSAGES_PER_MINUTE: env.int(120, 0),
  /** How long a quiet chat's channel stays subscribed on an instance after its last listener left (ChatFeed); 0: unsubscribe at once. */
  CHAT_LINGER_MS: env.int(30_000, 0),
  /** Prices that win over the price table's, for cost budgets (observability takes the same variable for the costs it shows). */
  PRICE_OVERRIDES: PriceOverridesEnv,
  /** Put every timeline event on the observability queue. */
  OBSERVABILITY_EVENTS: env.bool(true),
  /** Observability jobs that may wait (its consumer may not run yet); above it, events are dropped with a warning. */
  OBSERVABILITY_QUEUE_MAX: env.int(10_000, 1),
  /** Conversation kept between turns and sent to the model: the newest messages, at most this many… */
  CONVERSATION_MAX_MESSAGES: env.int(200, 2),
  /** …and about this many characters (roughly 4 a token). */
  CONVERSATION_MAX_CHARS: env.int(400_000, 1_000),
  /**
   * `on`: a turn's events are indexed, stored and delivered from a tail in Redis (streams), and
   * written to PostgreSQL behind, in batches, by one worker's flusher (store/tail.ts); `off`: each
   * batch is committed to PostgreSQL before it is delivered. See docs/architecture.md.
   */
  EVENT_TAIL: z.enum(['on', 'off']).default('off'),
  /** With the tail: flushed events a chat's stream keeps for resumes (and keys it remembers, so a re-run's events are not stored twice)… */
  EVENT_TAIL_KEEP: env.int(1_000, 1),
  /** …and events a chat may hold unflushed (PostgreSQL away) before its appends are refused as storage being away… */
  EVENT_TAIL_MAX_UNFLUSHED: env.int(100_000, 1),
  /** …and events one runtime process may hold unwritten over all its chats (bounds Redis and the process in total). */
  EVENT_TAIL_MAX_BEHIND: env.int(200_000, 1),
  /** A chat's tail whose every event PostgreSQL holds leaves Redis after this long without an append (a resume then reads PostgreSQL). */
  EVENT_TAIL_IDLE_MS: env.int(3600_000, 1000),
  DB_POOL_SIZE: env.int(10, 1),
  /** Inputs a chat may have waiting for a turn; one more is refused with RATE_LIMITED (429). */
  MAX_PENDING_INPUTS: env.int(20, 1),
  /** How often one worker looks for inputs that wait with no job in the queue (Redis lost it: a failover); 0: never. */
  INPUT_SWEEP_MS: env.int(30_000, 0),
  /** An input that old, not done and with no job, is queued again. */
  INPUT_REQUEUE_AFTER_MS: env.int(60_000, 1_000),
  OPENAI_BASE_URL: z.url().optional(),
  OPENAI_API_KEY: z.string().optional(),
  OPENAI_MODEL: z.string().default('gpt-4o-mini'),
  ANTHROPIC_API_KEY: z.string().optional(),
  ANTHROPIC_BASE_URL: z.url().optional(),
  ANTHROPIC_MODEL: z.string().default('claude-sonnet-4-5'),
  /** The document server, where `POST /api/chat/upload` streams attachments; `off`: they stay in PostgreSQL (bytea). */
  DOCUMENTS_URL: z
    .string()
    .default('http://127.0.0.1:8766')
    .refine((s) => s === 'off' || URL.canParse(s), 'must be a URL or "off"')
    .transform((s) => (s === 'off' ? null : s.replace(/\/+$/, ''))),
  /** The agent manager, where agents declared with `blueprint` get their system prompt; `off`: none (such agents fail with BLUEPRINT_ERROR). */
  AGENTS_URL: z
    .string()
    .default('http://127.0.0.1:8767')
    .refine((s) => s === 'off' || URL.canParse(s), 'must be a URL or "off"')
    .transform((s) => (s === 'off' ? null : s.replace(/\/+$/, ''))),
  /** How long a worker keeps a blueprint when no change announcement drops it first (announcements lost while Redis was away). */
  BLUEPRINT_CACHE_MS: env.int(30_000, 0),
  /** Mission Ally's operator API: the token claim listing roles, and the role it must hold. */
  OPERATOR_CLAIM: z.string().min(1).default('roles'),
  OPERATOR_ROLE: z.string().min(1).default('operator'),
}).superRefine(checkBaseEnv);
export type RuntimeConfig = z.infer<typeof RuntimeEnv>;

export const loadRuntimeConfig = (e?: Record<string, string | undefined>) => loadConfig(RuntimeEnv, e);
