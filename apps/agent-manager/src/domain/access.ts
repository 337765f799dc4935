import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { agents } from '@tessera/contracts';
import { BadRequest, canUseApp, Forbidden, hasRole, parseOr400, SERVICE_KEY_HEADER, Unauthorized, type Auth, type Principal } from '@tessera/kit';
import type { AgentManagerConfig } from '../config';

declare module 'express-serve-static-core' {
  interface Request {
    /** The caller proved itself a Tessera service (the runtime reading a blueprint). */
    fromService?: boolean;
    /** The app the request acts in: every agent it reads or changes is this app's. */
    agentApp?: string;
  }
}

export interface Access {
  /** Reads: a valid token of the platform, within its app; or the service key, for the app it names. */
  reader: RequestHandler;
  /** Changes: a token whose role claim holds the operator role, within its app. */
  operator: RequestHandler;
}

type Config = Pick<AgentManagerConfig, 'SERVICE_KEY' | 'OPERATOR_CLAIM' | 'OPERATOR_ROLE' | 'DEFAULT_APP_ID'>;

/**
 * Document 001 §2 has no auth in V1; Tessera's services all take a bearer token. Blueprints
 * belong to an app: a user reads their app's, an operator changes their apps', and the service
 * key (the runtime resolving a chat's blueprint) names the one app it acts for. Which app a
 * request acts in (`req.agentApp`):
 * - a token allowing one app: that app (naming another is a 403);
 * - a token allowing several: the one it names (`?app_id=` or `x-tessera-app`), else a 400;
 * - a token allowing any app (no `apps` claim; the development stand-in): the named one, else DEFAULT_APP_ID;
 * - the service key: the named one, else a 400. It reads only, and only there.
 */
export function createAccess(config: Config, auth: Auth): Access {
  const serviceKey = Buffer.from(config.SERVICE_KEY);
  const isService = (given: string | undefined) => {
    if (given === undefined) return false;
    const b = Buffer.from(given);
    if (b.length === serviceKey.length && timingSafeEqual(b, serviceKey)) return true;
    throw new Unauthorized('invalid service key');
  };
  const authn = auth.middleware('http');
  const withApp = (req: Request, next: (err?: unknown) => void, decide: (named: string | undefined) => string) => {
    try {
      const app = decide(namedApp(req));
      // A token's own app that cannot be a folder name (named ones are validated as they are read).
      if (!agents.AgentAppId.safeParse(app).success) throw new Forbidden(`app "${app}" cannot hold agents (its id is not a valid folder name)`);
      req.agentApp = app;
      next();
    } catch (e) {
      next(e);
    }
  };
  const appOf = (p: Principal | undefined) => (named: string | undefined) => tokenApp(p, named, config.DEFAULT_APP_ID);
  return {
    reader: (req, res, next) => {
      try {
        if (isService(req.header(SERVICE_KEY_HEADER))) {
          req.fromService = true;
          return withApp(req, next, (named) => {
            if (named === undefined) throw new BadRequest(`the service key acts for one app: name it (?app_id= or ${agents.AGENT_APP_HEADER})`);
            return named;
          });
        }
      } catch (e) {
        return next(e);
      }
      authn(req, res, (err?: unknown) => (err ? next(err) : withApp(req, next, appOf(req.principal))));
    },
    operator: (req, res, next) =>
      authn(req, res, (err?: unknown) => {
        if (err) return next(err);
        const p = req.principal;
        // Auth disabled (local development): the stand-in may do anything.
        if (p && !p.anonymous) {
          if (!hasRole(p, config.OPERATOR_CLAIM, config.OPERATOR_ROLE)) return next(new Forbidden(`changing agents needs an operator token (claim "${config.OPERATOR_CLAIM}" holding "${config.OPERATOR_ROLE}")`));
        }
        withApp(req, next, appOf(p));
      }),
  };
}

/** The app a request names: `?app_id=` or the `x-tessera-app` header (both: they must agree). */
function namedApp(req: Request): string | undefined {
  const { app_id: query } = parseOr400(agents.AppQuery, { app_id: req.query.app_id }, 'query');
  const raw = req.header(agents.AGENT_APP_HEADER);
  const header = raw === undefined ? undefined : parseOr400(agents.AgentAppId, raw, `header ${agents.AGENT_APP_HEADER}`);
  if (query !== undefined && header !== undefined && query !== header) throw new BadRequest(`?app_id= ("${query}") and ${agents.AGENT_APP_HEADER} ("${header}") name different apps`);
  return query ?? header;
}

function tokenApp(p: Principal | undefined, named: string | undefined, defaultApp: string): string {
  if (!p) throw new Unauthorized();
  if (p.apps === '*') return named ?? defaultApp;
  if (named !== undefined) {
    if (!canUseApp(p, named)) throw new Forbidden(`token does not allow app "${named}"`);
    return named;
  }
  if (p.apps.length === 1) return p.apps[0];
  if (p.apps.length === 0) throw new Forbidden('token allows no app');
  throw new BadRequest(`token allows several apps (${p.apps.join(', ')}): name one with ?app_id= or ${agents.AGENT_APP_HEADER}`);
}
