import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig } from '@tessera/kit';

export const GatewayEnv = BaseEnv.extend({
  PORT: env.port(8080),
}).superRefine(checkBaseEnv);
export type GatewayConfig = z.infer<typeof GatewayEnv>;

export const loadGatewayConfig = (e?: Record<string, string | undefined>) => loadConfig(GatewayEnv, e);
