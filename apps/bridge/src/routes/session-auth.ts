import type { RequestHandler } from 'express';
import type { BridgeServices } from '../services';
import type { SessionRecord } from '../store/sessions';

/**
 * Every `/api/session/{sessionId}/*` route: the session if the caller may use it (domain/access.ts):
 * 401 with no credential, 404 for a session that does not exist or is not the caller's.
 */
export function sessionAuth(s: BridgeServices): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const { rec, owner } = await s.access.session(req, String(req.params.sessionId), (id) => s.store.get(id), 'http');
      // An operator looking at it is not its use: an unused session still closes after OPENCODE_UNUSED_TIMEOUT.
      s.store.touch(rec.id, { use: owner });
      res.locals.session = rec;
    })().then(() => next(), next);
  };
}

export const sessionOf = (res: { locals: Record<string, unknown> }) => res.locals.session as SessionRecord;
