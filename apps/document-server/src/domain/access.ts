import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCode } from '@tessera/contracts';
import type { RequestHandler } from 'express';
import { BadRequest, Forbidden, hasRole, SERVICE_KEY_HEADER, Unauthorized, type Auth, type Guards } from '@tessera/kit';
import type { DocumentServerConfig } from '../config';

declare module 'express-serve-static-core' {
  interface Request {
    /** Whose documents the request reaches, set by its route's guard (`routeGuards`). */
    documentScope?: Scope;
  }
}

/**
 * Whose documents a caller reaches: those of `apps` (`'*'`: any), and of those only the ones it
 * uploaded unless `uploader` is null (an operator, or a Tessera service such as the runtime).
 * Anything outside is as absent as a document that never existed.
 */
export interface Scope {
  apps: '*' | string[];
  uploader: string | null;
  /** The caller's name: a document it uploads is `uploaded_by` it (a service names the user instead). */
  sub: string;
  service: boolean;
}

export const inApps = (scope: Scope, appId: string) => scope.apps === '*' || scope.apps.includes(appId);

export function assertApp(scope: Scope, appId: string): void {
  if (!inApps(scope, appId)) throw new Forbidden(`this token may not use app "${appId}"`);
}

/**
 * The app an upload goes into: the one `named` (which the scope must reach), else the token's
 * only app. A token of several apps, of any app, or the service key has to choose: a 400 naming
 * `form.app_id`.
 */
export function uploadApp(scope: Scope, named: string | undefined): string {
  if (named !== undefined) {
    assertApp(scope, named);
    return named;
  }
  if (scope.apps !== '*' && scope.apps.length === 1) return scope.apps[0];
  const why = scope.service ? 'the service key acts for any app' : scope.apps === '*' ? 'this token allows any app' : scope.apps.length === 0 ? 'this token allows no app' : `this token allows several apps (${scope.apps.join(', ')})`;
  const message = `required: ${why}; name the one to upload into`;
  throw new BadRequest(`invalid form: form.app_id: ${message}`, { issues: [{ path: 'form.app_id', message }] }, ErrorCode.ValidationFailed);
}

/**
 * A request's scope: the service key (`x-tessera-service-key`) is every app's service; a bearer
 * token reaches the apps it lists, everything in them with the operator role (OPERATOR_CLAIM
 * holding OPERATOR_ROLE), else the caller's own uploads. End users of an app therefore never
 * read each other's files.
 */
export function createAccess(config: Pick<DocumentServerConfig, 'SERVICE_KEY' | 'OPERATOR_CLAIM' | 'OPERATOR_ROLE'>, auth: Auth) {
  const serviceKey = Buffer.from(config.SERVICE_KEY);
  return async function scopeOf(req: IncomingMessage): Promise<Scope> {
    const given = req.headers[SERVICE_KEY_HEADER];
    if (given !== undefined) {
      const key = Buffer.from(Array.isArray(given) ? given[0] : given);
      if (key.length === serviceKey.length && timingSafeEqual(key, serviceKey)) return { apps: '*', uploader: null, sub: 'service', service: true };
      throw new Unauthorized('invalid service key');
    }
    const p = await auth.authenticate(req, 'http');
    if (p.anonymous) return { apps: '*', uploader: null, sub: p.sub, service: false };
    return { apps: p.apps, uploader: hasRole(p, config.OPERATOR_CLAIM, config.OPERATOR_ROLE) ? null : p.sub, sub: p.sub, service: false };
  };
}
export type ScopeOf = ReturnType<typeof createAccess>;

/** The document server's access rules: a user's apps' documents (lists, uploads), and one document (its owner's). */
export type DocumentAccess = 'user' | 'owner';

/**
 * Both rules take the same credential (a token, or the service key) and set `req.documentScope`.
 * `owner` is kept by the store: a document is found only within the scope (the uploader's own,
 * an operator's of its app, a service's), so anyone else's id answers the 404 of a missing one.
 */
export function routeGuards(scopeOf: ScopeOf): Guards<DocumentAccess> {
  const scoped: RequestHandler = (req, _res, next) => {
    scopeOf(req).then((scope) => {
      req.documentScope = scope;
      next();
    }, next);
  };
  return { user: scoped, owner: scoped };
}
