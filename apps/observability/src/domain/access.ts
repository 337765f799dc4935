import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Forbidden, hasRole, SERVICE_KEY_HEADER, Unauthorized, type Auth, type Guards, type Principal } from '@tessera/kit';
import type { ObservabilityConfig } from '../config';

declare module 'express-serve-static-core' {
  interface Request {
    /** The apps whose sessions the request reads or writes, set by its route's guard (`routeGuards`). */
    sessionScope?: AppScope;
  }
}

/** The apps whose sessions a caller may see or write: `'*'` for any (sessions without an app too). */
export type AppScope = '*' | string[];

export const INGEST_KEY_HEADER = 'x-ingest-key';

export interface Access {
  /** An operator's scope: the token's `apps`. Anyone without the operator role is refused (403). */
  operatorScope(principal: Principal | undefined): AppScope;
  /** Who may write events: the service key (any app), or an app's ingest key (that app); else 401. */
  ingestScope(req: IncomingMessage): AppScope;
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
    ingestScope(req) {
      const service = header(req, SERVICE_KEY_HEADER);
      if (service !== undefined) {
        const given = Buffer.from(service);
        if (given.length === serviceKey.length && timingSafeEqual(given, serviceKey)) return '*';
        throw new Unauthorized(`the ${SERVICE_KEY_HEADER} received is not this deployment's service key`);
      }
      const key = header(req, INGEST_KEY_HEADER);
      const app = key === undefined ? undefined : config.INGEST_KEYS.get(key);
      if (app === undefined) throw new Unauthorized(ingestRefusal(req, key, config.INGEST_KEYS.size));
      return [app];
    },
  };
}

/** Observability's access rules: operators read and change sessions; agents ingest with a key. */
export type ObservabilityAccess = 'operator' | 'ingest';

/**
 * How each rule is enforced; every guard sets `req.sessionScope`, the apps the route then acts in.
 * - `operator`: a token with the operator role, for its apps. Another Tessera service reads
 *   (GET) every app with the service key (the agent manager asking which running sessions use an
 *   agent); it changes nothing: a change sent with the service key is a 401.
 * - `ingest`: an app's ingest key, for that app; the service key, for any (`ingestScope`).
 */
export function routeGuards(access: Access, auth: Auth): Guards<ObservabilityAccess> {
  const tokenCheck = auth.middleware('http');
  return {
    operator: (req, res, next) => {
      if (req.header(SERVICE_KEY_HEADER) !== undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return next(new Unauthorized('the service key reads sessions only; changing one needs an operator token'));
        req.sessionScope = access.ingestScope(req);
        return next();
      }
      tokenCheck(req, res, (err?: unknown) => {
        if (err) return next(err);
        try {
          req.sessionScope = access.operatorScope(req.principal);
        } catch (e) {
          return next(e);
        }
        next();
      });
    },
    ingest: (req, _res, next) => {
      req.sessionScope = access.ingestScope(req);
      next();
    },
  };
}

/**
 * What a refused ingest request received and what it needs. Through the gateway the service key
 * never arrives (the gateway removes it from every client request), so the message says so: an
 * outside agent that sent it learns why it was not taken. The key itself is never echoed.
 */
export function ingestRefusal(req: IncomingMessage, key: string | undefined, configuredKeys: number): string {
  const need = `send your app's ingest key in the ${INGEST_KEY_HEADER} header`;
  const where = configuredKeys === 0 ? ' (this service has no ingest keys: set INGEST_KEYS=<app_id>:<key>; `npm start` sets and prints one for demo-app)' : ' (INGEST_KEYS)';
  if (key !== undefined) return `the ${INGEST_KEY_HEADER} received is not the key of any app${where}; ${need}`;
  const received = header(req, 'authorization') !== undefined ? 'an Authorization header and no ingest key (a user token does not ingest)' : `no ${INGEST_KEY_HEADER} header`;
  return `received ${received}; ${need}${where}. The service key (${SERVICE_KEY_HEADER}) is for Tessera's own services and never arrives through the gateway, which removes it from every client request`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
