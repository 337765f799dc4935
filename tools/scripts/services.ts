/**
 * The platform's processes, in start order: the one stack definition that `npm start`
 * (tools/scripts/start.ts) runs and every test that spawns a service and the benchmarks read
 * (through the kit's testing `entryOf`). A new service is added here, in docker/compose.yaml, in
 * the gateway's routes and in CI.
 */
export interface ServiceEntry {
  name: string;
  app: string;
  /** The process's entry file, from the repository root. */
  entry: string;
  port?: number;
  /** Environment variable of `npm start` that moves the service to another port. */
  portVar?: string;
}

export const SERVICES: ServiceEntry[] = [
  { name: 'runtime', app: 'runtime', entry: 'apps/runtime/src/main.ts', port: 8000, portVar: 'RUNTIME_PORT' },
  // The turn worker: a second process of the runtime, so sockets and turns scale apart.
  { name: 'runtime-worker', app: 'runtime', entry: 'apps/runtime/src/worker.ts' },
  { name: 'broker', app: 'broker', entry: 'apps/broker/src/main.ts', port: 8001, portVar: 'BROKER_PORT' },
  // Sessions recorded, live and stoppable; consumes the runtime's observability-events queue.
  { name: 'observability', app: 'observability', entry: 'apps/observability/src/main.ts', port: 8765, portVar: 'OBSERVABILITY_PORT' },
  // Agent blueprints as files (.agent-orchestrator/apps/{app}/agents/) that workflows' agents run on.
  { name: 'agent-manager', app: 'agent-manager', entry: 'apps/agent-manager/src/main.ts', port: 8767, portVar: 'AGENT_MANAGER_PORT' },
  // Documents and chat attachments: metadata in PostgreSQL, blobs in .data/documents (or S3).
  { name: 'document-server', app: 'document-server', entry: 'apps/document-server/src/main.ts', port: 8766, portVar: 'DOCUMENTS_PORT' },
  // A real OpenCode agent server (`opencode serve`) per session, provisioned, reused and reaped (document 004).
  { name: 'bridge', app: 'bridge', entry: 'apps/bridge/src/main.ts', port: 3000, portVar: 'BRIDGE_PORT' },
  { name: 'gateway', app: 'gateway', entry: 'apps/gateway/src/main.ts', port: 8080, portVar: 'GATEWAY_PORT' },
];

/** `npm start`'s name for an entry. */
export type ServiceProcess = ServiceEntry;

/**
 * The demo price `npm start` gives the scripted model when PRICE_OVERRIDES is unset (gpt-4o-mini's
 * list price, USD per million tokens), so that a fresh clone's chats have a cost.
 */
export const DEMO_PRICE_OVERRIDES = { scripted: { input: 0.15, output: 0.6, cache_read: 0.075 } };
