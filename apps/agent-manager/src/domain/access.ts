import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Forbidden, SERVICE_KEY_HEADER, Unauthorized, type Auth } from '@tessera/kit';
import type { AgentManagerConfig } from '../config';

declare module 'express-serve-static-core' {
  interface Request {
    /** The caller proved itself a Tessera service (the runtime reading a blueprint). */
    fromService?: boolean;
  }
}

export interface Access {
  /** Reads: any valid token of the platform, or the service key. */
  reader: RequestHandler;
  /** Changes: a token whose role claim holds the operator role. */
  operator: RequestHandler;
}

/**
 * Document 001 §2 has no auth in V1; Tessera's services all take a bearer token. Blueprints are
 * the platform's, not an app's: a signed-in caller may read them, an operator may change them.
 */
export function createAccess(config: Pick<AgentManagerConfig, 'SERVICE_KEY' | 'OPERATOR_CLAIM' | 'OPERATOR_ROLE'>, auth: Auth): Access {
  const serviceKey = Buffer.from(config.SERVICE_KEY);
  const isService = (given: string | undefined) => {
    if (given === undefined) return false;
    const b = Buffer.from(given);
    if (b.length === serviceKey.length && timingSafeEqual(b, serviceKey)) return true;
    throw new Unauthorized('invalid service key');
  };
  const authn = auth.middleware('http');
  return {
    reader: (req, res, next) => {
      try {
        if (isService(req.header(SERVICE_KEY_HEADER))) {
          req.fromService = true;
          return next();
        }
      } catch (e) {
        return next(e);
      }
      return authn(req, res, next);
    },
    operator: (req, res, next) =>
      authn(req, res, (err?: unknown) => {
        if (err) return next(err);
        const p = req.principal;
        // Auth disabled (local development): the stand-in may do anything.
        if (!p || p.anonymous) return next();
        const claim = p.claims[config.OPERATOR_CLAIM];
        const roles = Array.isArray(claim) ? claim.map(String) : typeof claim === 'string' ? claim.split(/[\s,]+/) : [];
        if (!roles.includes(config.OPERATOR_ROLE)) return next(new Forbidden(`changing agents needs an operator token (claim "${config.OPERATOR_CLAIM}" holding "${config.OPERATOR_ROLE}")`));
        next();
      }),
  };
}
