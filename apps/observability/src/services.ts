import type { RedisClient } from '@tessera/kit';
import { authSettings, BusPublisher, BusSubscriber, createAuth, createRedis, Metrics, type Auth, type DeclaredRoutes, type Logger } from '@tessera/kit';
import type { ObservabilityConfig } from './config';
import { createAccess, type Access, type ObservabilityAccess } from './domain/access';
import { createPricer } from '@tessera/kit';
import { Ingestor } from './ingest/ingestor';
import { TraceSessions } from './ingest/trace-sessions';
import { createDb, type Db } from './store/db';
import { EventStore } from './store/events';
import { SessionStore } from './store/sessions';
import { UsageStore } from './store/usage';
import { TraceIndex } from './store/traces';

/** Operators read and change sessions (reads also the service key's); agents ingest with a key (domain/access.ts). */
export type ObservabilityRoutes = DeclaredRoutes<ObservabilityAccess>;

/**
 * Observability's composition root, shared by the HTTP/WS process (server.ts) and the queue
 * consumer process (worker.ts): connections, stores and the ingestor, with one close() for all.
 */
export interface ObservabilityServices {
  config: ObservabilityConfig;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  redis: RedisClient;
  /** Publishes on the contracts' channels (live changes: bus/live.ts; operators' stops: bus/control.ts). */
  bus: BusPublisher;
  /** The channels this process follows, on a connection of its own (a subscribed one can do nothing else). */
  subscriber: BusSubscriber;
  sessions: SessionStore;
  events: EventStore;
  ingestor: Ingestor;
  /** Model calls' tokens and cost per app, user, workflow, agent, model and hour (GET /usage). */
  usage: UsageStore;
  /** OpenTelemetry's trace → session index, and the merge of a trace's provisional session. */
  traces: TraceIndex;
  /** POST /v1/traces's way to the ingestor: spans of one trace, whatever batches they came in, into one session. */
  traceSessions: TraceSessions;
  access: Access;
  /** The platform's tokens, for the operator routes and the live socket: built once per process. */
  auth: Auth;
  close(): Promise<void>;
}

export function createObservabilityServices(config: ObservabilityConfig, logger: Logger, role: 'api' | 'worker' = 'api'): ObservabilityServices {
  const metrics = new Metrics(role === 'api' ? 'observability' : 'observability-worker');
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE);
  const redis = createRedis(config.REDIS_URL, logger, `observability-${role}`);
  const sub = createRedis(config.REDIS_URL, logger, `observability-${role}-sub`, { maxRetriesPerRequest: null });
  const bus = new BusPublisher(redis);
  const ingestor = new Ingestor(db.pool, bus, logger, metrics, createPricer(config.PRICE_OVERRIDES));
  const traces = new TraceIndex(db.pool);
  return {
    config,
    logger,
    metrics,
    db,
    redis,
    bus,
    subscriber: new BusSubscriber(sub, logger),
    sessions: new SessionStore(db.pool),
    events: new EventStore(db.pool),
    ingestor,
    usage: new UsageStore(db.pool),
    traces,
    traceSessions: new TraceSessions(traces, ingestor, bus, logger),
    access: createAccess(config),
    auth: createAuth(authSettings(config)),
    async close() {
      await Promise.allSettled([redis.quit(), sub.quit()]);
      await db.close();
    },
  };
}
