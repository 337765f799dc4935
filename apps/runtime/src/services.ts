import type { RedisClient } from '@tessera/kit';
import { Queue } from '@tessera/contracts';
import { authSettings, bullConnection, BusPublisher, BusSubscriber, createAuth, createPricer, createRedis, Metrics, TypedQueue, type Auth, type DeclaredRoutes, type Logger } from '@tessera/kit';
import { agentChatModel, Workflows } from './blueprints/agent-workflows';
import { BlueprintSource } from './blueprints/blueprint-source';
import { BudgetMeter } from './budgets/meter';
import { ChatAttachments } from './attachments/chat-attachments';
import { DocumentClient } from './attachments/document-client';
import { ChatFeed } from './bus/feed';
import type { RuntimeConfig } from './config';
import { loadWorkflows } from './engine/workflows';
import type { LoadedWorkflow, ProviderRegistry } from './engine/types';
import { MissionStore } from './store/missions';
import { createProviderRegistry } from './providers/registry';
import { AttachmentStore } from './store/attachments';
import { BudgetStore } from './store/budgets';
import { ChatStore } from './store/chats';
import { createDb, type Db } from './store/db';
import { InputStore } from './store/inputs';
import { EventTail } from './store/tail';
import { Timeline } from './store/timeline';
import { TurnEnd } from './store/turn-end';
import { ToolCallStore } from './store/tool-calls';
import { ChatInputs } from './turns/chat-inputs';
import { ChatLease } from './turns/chat-lease';
import { UserMessageLimit } from './turns/user-limit';
import { ChatStarter } from './turns/chat-starter';
import { observer, type Observer } from './turns/observe';

/** The runtime's route declarations: discovery is public, the chat API a user's or an owner's, missions an operator's, one internal route a service's. */
export type RuntimeRoutes = DeclaredRoutes<'public' | 'user' | 'owner' | 'operator' | 'service'>;

/**
 * The runtime's composition root, shared by the HTTP/WS process and the turn worker (server.ts):
 * connections, stores and services, with one close() for all of them.
 */
export interface RuntimeServices {
  config: RuntimeConfig;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  redis: RedisClient;
  /** A connection of its own for one blocking read (a resumed MCP stream's XREAD); its user disconnects it. */
  blockingConnection(name: string): RedisClient;
  /** The platform's tokens, for routes and sockets: built once per process. */
  auth: Auth;
  /** The channels this process follows (chats' events, stops, agent changes), on a connection of their own. */
  subscriber: BusSubscriber;
  feed: ChatFeed;
  chats: ChatStore;
  inputs: InputStore;
  toolCalls: ToolCallStore;
  timeline: Timeline;
  turnEnd: TurnEnd;
  lease: ChatLease;
  turnQueue: TypedQueue<typeof Queue.RuntimeTurns>;
  observabilityQueue: TypedQueue<typeof Queue.ObservabilityEvents> | null;
  observe: Observer;
  workflows: Map<string, LoadedWorkflow>;
  providers: ProviderRegistry;
  starter: ChatStarter;
  chatInputs: ChatInputs;
  /** Work-making messages per user per minute (chat starts here; ChatInputs counts messages and answers). */
  userLimit: UserMessageLimit;
  /** The document server, where chat uploads go (null: DOCUMENTS_URL=off, uploads stay in PostgreSQL). */
  documents: DocumentClient | null;
  /** A chat's attachments, wherever they are stored, for agents and routes. */
  attachments: ChatAttachments;
  /** The attachments kept in the runtime's database (uploads while DOCUMENTS_URL=off). */
  attachmentRows: AttachmentStore;
  /** Blueprint system prompts from the agent manager (null: AGENTS_URL=off). */
  blueprints: BlueprintSource | null;
  /** Mission Ally's missions, enrollments and progress (document 002). */
  missions: MissionStore;
  /** Budgets as operators set them. */
  budgetStore: BudgetStore;
  /** Budgets enforced: spend per app and user, checked before each model call and each message that makes work. */
  budgets: BudgetMeter;
  close(): Promise<void>;
}

export function createRuntimeServices(config: RuntimeConfig, logger: Logger, role: 'api' | 'worker'): RuntimeServices {
  // Loaded first: an invalid workflow stops the start with the file and field named.
  const workflows = new Workflows(loadWorkflows(config.WORKFLOWS_DIR), agentChatModel(config));
  const providers = createProviderRegistry({
    openai: config.OPENAI_BASE_URL ? { baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY, model: config.OPENAI_MODEL } : undefined,
    anthropic: config.ANTHROPIC_API_KEY ? { apiKey: config.ANTHROPIC_API_KEY, model: config.ANTHROPIC_MODEL, baseURL: config.ANTHROPIC_BASE_URL } : undefined,
  });
  const metrics = new Metrics(role === 'api' ? 'runtime' : 'runtime-worker');
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE);
  const redis = createRedis(config.REDIS_URL, logger, `runtime-${role}`);
  const sub = createRedis(config.REDIS_URL, logger, `runtime-${role}-sub`, { maxRetriesPerRequest: null });
  const subscriber = new BusSubscriber(sub, logger);
  const feed = new ChatFeed(new BusPublisher(redis, { perTick: true }), subscriber, config.CHAT_LINGER_MS);
  const connection = bullConnection(config.REDIS_URL);
  const turnQueue = new TypedQueue(Queue.RuntimeTurns, connection, logger, { prefix: config.BULL_PREFIX });
  const observabilityQueue = config.OBSERVABILITY_EVENTS
    ? new TypedQueue(Queue.ObservabilityEvents, connection, logger, {
        prefix: config.BULL_PREFIX,
        defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { count: 10_000 } },
      })
    : null;
  const observe = observer(observabilityQueue, logger, { maxWaiting: config.OBSERVABILITY_QUEUE_MAX, metrics });
  metrics.watchQueue(Queue.RuntimeTurns, () => turnQueue.depth());
  const tail =
    config.EVENT_TAIL === 'on'
      ? new EventTail(redis, db.pool, { prefix: config.BULL_PREFIX, keep: config.EVENT_TAIL_KEEP, maxUnflushed: config.EVENT_TAIL_MAX_UNFLUSHED, maxBehind: config.EVENT_TAIL_MAX_BEHIND, idleTtlMs: config.EVENT_TAIL_IDLE_MS }, logger)
      : undefined;
  const chats = new ChatStore(db.prisma, db.pool, tail);
  const inputs = new InputStore(db.prisma, db.pool);
  const toolCalls = new ToolCallStore(db.prisma);
  const timeline = new Timeline(db.pool, tail);
  const lease = new ChatLease(redis, config.BULL_PREFIX);
  const blueprints = config.AGENTS_URL ? new BlueprintSource(config.AGENTS_URL, config.SERVICE_KEY, config.BLUEPRINT_CACHE_MS, logger) : null;
  const starter = new ChatStarter(chats, workflows, blueprints?.lookup ?? null);
  const userLimit = new UserMessageLimit(redis, config.BULL_PREFIX, config.WS_USER_MESSAGES_PER_MINUTE);
  const budgetStore = new BudgetStore(db.pool);
  const budgets = new BudgetMeter(redis, budgetStore, config.BULL_PREFIX, createPricer(config.PRICE_OVERRIDES), logger);
  const chatInputs = new ChatInputs({ chats, inputs, toolCalls, turnQueue, timeline, feed, observe, userLimit, budgets }, {
    maxPending: config.MAX_PENDING_INPUTS,
    strategyOf: (chat) => workflows.get(chat.workflowName)?.multitask_strategy ?? 'enqueue',
  });
  const documents = config.DOCUMENTS_URL ? new DocumentClient(config.DOCUMENTS_URL, config.SERVICE_KEY) : null;
  const attachmentRows = new AttachmentStore(db.prisma);
  return {
    config,
    logger,
    metrics,
    db,
    redis,
    blockingConnection: (name) => createRedis(config.REDIS_URL, logger, name, { maxRetriesPerRequest: null }),
    auth: createAuth(authSettings(config)),
    subscriber,
    feed,
    chats,
    inputs,
    toolCalls,
    timeline,
    turnEnd: new TurnEnd(db.pool, tail),
    lease,
    turnQueue,
    observabilityQueue,
    observe,
    workflows,
    providers,
    starter,
    chatInputs,
    userLimit,
    documents,
    attachments: new ChatAttachments(attachmentRows, documents),
    attachmentRows,
    blueprints,
    missions: new MissionStore(db.pool),
    budgetStore,
    budgets,
    async close() {
      observe.flush();
      // What this process appended to the tails goes to PostgreSQL before the pool closes.
      await tail?.close();
      await Promise.allSettled([turnQueue.close(), observabilityQueue?.close(), blueprints?.close(), documents?.close()]);
      await Promise.allSettled([redis.quit(), sub.quit()]);
      await db.close();
    },
  };
}
