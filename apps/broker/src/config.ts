import { z } from 'zod';
import { AppId } from '@tessera/contracts';
import { BaseEnv, checkBaseEnv, env, loadConfig } from '@tessera/kit';

/**
 * The broker's environment (document 000 §7 names in brackets). Besides BaseEnv (auth, CORS,
 * REDIS_URL, SERVICE_KEY, ...):
 *
 *   PORT                8001
 *   RUNTIME_URL         http://127.0.0.1:8000   the runtime's HTTP API [Mozaiks__ApiUrl]
 *   PUBLIC_WS_URL       ws://localhost:8080     where clients open chat sockets: the gateway [Mozaiks__WsUrl]
 *   APP_ID              demo-app                the app this broker starts chats for [Mozaiks__AppId]
 *   CONTEXT_SOURCE_URL  (unset)                 the host application's endpoint of backend-only user context:
 *                                               GET ?user_id=…&app_id=… with the service key header → JSON object
 *   CONTEXT_FILE        (unset)                 development stand-in: a JSON file { "<user_id>": {…}, "*": {…defaults} }
 *   RUNTIME_TIMEOUT_MS  10000                   budget of one runtime call; past it the AI service is "unavailable"
 *   CONTEXT_TIMEOUT_MS  2000                    budget of one context source call
 */
export const BrokerEnv = BaseEnv.extend({
  PORT: env.port(8001),
  RUNTIME_URL: env.url('http://127.0.0.1:8000'),
  PUBLIC_WS_URL: z
    .string()
    .regex(/^wss?:\/\/[^/]+/, 'must be a ws:// or wss:// URL')
    .default('ws://localhost:8080')
    .transform((u) => u.replace(/\/+$/, '')),
  APP_ID: AppId.default('demo-app'),
  CONTEXT_SOURCE_URL: z.url().optional(),
  CONTEXT_FILE: z.string().optional(),
  RUNTIME_TIMEOUT_MS: env.int(10_000, 100),
  CONTEXT_TIMEOUT_MS: env.int(2_000, 50),
}).superRefine(checkBaseEnv);
export type BrokerConfig = z.infer<typeof BrokerEnv>;

export const loadBrokerConfig = (e?: Record<string, string | undefined>) => loadConfig(BrokerEnv, e);
