/**
 * The real stack the console talks to: the whole platform as processes (libs/kit/src/platform.ts,
 * started the way `npm start` starts it), with the console's built files behind the gateway, this
 * folder's test workflows, and the broker's context source a CONTEXT_FILE, as `npm start`'s, giving
 * the stack's operator the plan `CONTEXT_PLAN`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, startPlatform } from '@tessera/kit/platform';
import { DEMO_PRICE_OVERRIDES, type ServiceProcess } from '@tessera/kit/testing';

export const ROOT = REPO_ROOT;
/** The stack's operator, and the plan the broker's context source gives them. */
export const OPERATOR = 'console-operator';
export const CONTEXT_PLAN = 'pro';

export interface Stack {
  /** The gateway's origin; the console is at `${url}/console/`. */
  url: string;
  appId: string;
  /** An operator of `appId` (roles: operator), as `npm start` prints one. */
  token: string;
  /** An ingest key of `appId`: outside agents post their events with it (`x-ingest-key`). */
  ingestKey: string;
  /** Signs another token with this stack's secret. */
  sign: (claims: { sub: string; [k: string]: unknown }) => Promise<string>;
  processes: ServiceProcess[];
  stop: () => Promise<void>;
}

export async function startStack(opts: { workflows?: string } = {}): Promise<Stack> {
  // The host application's backend-only user context (document 000 §3), as npm start's dev-context.json.
  const dir = mkdtempSync(join(tmpdir(), 'tessera-console-'));
  const contextFile = join(dir, 'context.json');
  writeFileSync(contextFile, JSON.stringify({ '*': { user_tier: 'standard' }, [OPERATOR]: { user_tier: CONTEXT_PLAN, support_priority: 'high' } }));
  const p = await startPlatform({
    workflows: [opts.workflows ?? join(__dirname, 'fixtures/workflows')],
    consoleDist: join(REPO_ROOT, 'apps/console/dist'),
    operator: OPERATOR,
    env: { broker: { CONTEXT_FILE: contextFile }, observability: { PRICE_OVERRIDES: JSON.stringify(DEMO_PRICE_OVERRIDES) }, runtime: { PRICE_OVERRIDES: JSON.stringify(DEMO_PRICE_OVERRIDES) } },
  }).catch((e) => {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  return {
    url: p.url,
    appId: p.appId,
    token: p.token,
    ingestKey: p.ingestKeys[p.appId],
    sign: p.sign,
    processes: p.processes,
    stop: async () => {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
