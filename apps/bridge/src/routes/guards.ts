import { openAccess, type DeclaredRoutes, type Guards } from '@tessera/kit';
import type { Bootstrapper } from '../domain/access';
import type { BridgeServices } from '../services';
import type { SessionRecord } from '../store/sessions';

declare module 'express-serve-static-core' {
  interface Request {
    /** Bootstrap (`user`): the service key, or the platform token's principal. */
    bootstrapper?: Bootstrapper;
    /** The servers list (`operator`): the apps whose servers the caller sees. */
    operatorApps?: '*' | string[];
    /** A session route (`owner`): the session, one the caller may use. */
    bridgeSession?: SessionRecord;
  }
}

/** The access rules the bridge offers, each as the bridge decides it (domain/access.ts). */
export type BridgeAccess = 'public' | 'user' | 'operator' | 'owner';
export type BridgeRoutes = DeclaredRoutes<BridgeAccess>;

/**
 * Each runs before the route's input is read: a caller with no credential is a 401 whatever it
 * sends, and one without the right to a session gets the 404 of a session that does not exist.
 */
export function bridgeGuards(s: BridgeServices): Guards<BridgeAccess> {
  return {
    public: openAccess,
    // A platform token or the service key; the app and user it may bootstrap for are checked against the body (access.ownerOf).
    user: async (req, _res, next) => {
      req.bootstrapper = await s.access.bootstrapper(req);
      next();
    },
    // An operator token (its apps), or the service key (every app).
    operator: async (req, _res, next) => {
      req.operatorApps = await s.access.operatorApps(req);
      next();
    },
    // The session's owner, an operator of its app, the service key, or the session's own token.
    owner: async (req, _res, next) => {
      const { rec, owner } = await s.access.session(req, String(req.params.sessionId), (id) => s.store.get(id), 'http');
      // An operator looking at it is not its use: an unused session still closes after OPENCODE_UNUSED_TIMEOUT.
      s.store.touch(rec.id, { use: owner });
      req.bridgeSession = rec;
      next();
    },
  };
}

