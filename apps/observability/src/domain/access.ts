import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Forbidden, hasRole, SERVICE_KEY_HEADER, Unauthorized, type Principal } from '@tessera/kit';
import type { ObservabilityConfig } from '../config';

/** The apps whose sessions a caller may see or write: `'*'` for any (sessions without an app too). */
export type AppScope = '*' | string[];

export const INGEST_KEY_HEADER = 'x-ingest-key';

export interface Access {
  /** An operator's scope: the token's `apps`. Anyone without the operator role is refused (403). */
  operatorScope(principal: Principal | undefined): AppScope;
  /** Who may write events: the service key (any app), or an app's ingest key (that app); else 401. */
  ingestScope(req: IncomingMessage): AppScope;
  /**
   * Who may read sessions and events: another Tessera service with the service key (the agent
   * manager asking which running sessions use an agent) reads every app; anyone else is an operator.
   */
  readScope(req: IncomingMessage & { principal?: Principal }): AppScope;
}

export function inScope(scope: AppScope, appId: string | null): boolean {
  return scope === '*' || (appId !== null && scope.includes(appId));
}

/**
 * Operators are not end users: reading other people's sessions needs a role claim
 * (OPERATOR_CLAIM, a string or an array) holding OPERATOR_ROLE, and reaches only the apps the
 * token lists. Ingest is machine-to-machine and takes keys, never user tokens.
 */
export function createAccess(config: Pick<ObservabilityConfig, 'OPERATOR_CLAIM' | 'OPERATOR_ROLE' | 'SERVICE_KEY' | 'INGEST_KEYS'>): Access {
  const serviceKey = Buffer.from(config.SERVICE_KEY);
  return {
    operatorScope(principal) {
      if (!principal) throw new Unauthorized();
      // Auth disabled (local development): the stand-in is everyone's operator.
      if (principal.anonymous) return '*';
      if (!hasRole(principal, config.OPERATOR_CLAIM, config.OPERATOR_ROLE)) throw new Forbidden(`an operator token is required (claim "${config.OPERATOR_CLAIM}" holding "${config.OPERATOR_ROLE}")`);
      return principal.apps;
    },
    readScope(req) {
      if (header(req, SERVICE_KEY_HEADER) !== undefined) return this.ingestScope(req);
      return this.operatorScope(req.principal);
    },
    ingestScope(req) {
      const service = header(req, SERVICE_KEY_HEADER);
      if (service !== undefined) {
        const given = Buffer.from(service);
        if (given.length === serviceKey.length && timingSafeEqual(given, serviceKey)) return '*';
        throw new Unauthorized('invalid service key');
      }
      const key = header(req, INGEST_KEY_HEADER);
      const app = key === undefined ? undefined : config.INGEST_KEYS.get(key);
      if (app === undefined) throw new Unauthorized(key === undefined ? `an ingest key (${INGEST_KEY_HEADER}) or the service key is required` : 'invalid ingest key');
      return [app];
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
