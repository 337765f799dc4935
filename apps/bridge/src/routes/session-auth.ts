import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { NotFound, Unauthorized } from '@tessera/kit';
import { tokenMatches } from '../domain/tokens';
import type { BridgeServices } from '../services';
import type { SessionRecord } from '../store/sessions';

/**
 * The session token from `X-Session-Token`, else `Authorization: Bearer`. Behind the gateway
 * Authorization carries the platform's token, so clients there use the header or `?sessionToken=`.
 */
export function presentedToken(h: IncomingHttpHeaders): string | undefined {
  const own = h['x-session-token'];
  if (typeof own === 'string' && own) return own;
  const m = /^Bearer\s+(\S+)$/i.exec(h.authorization ?? '');
  return m?.[1];
}

/** Every `/api/session/{sessionId}/*` route: 404 for an unknown session, 401 without its token. */
export function sessionAuth(s: BridgeServices): RequestHandler {
  return (req, res, next) => {
    void (async () => {
      const id = req.params.sessionId;
      const rec = typeof id === 'string' && id.length <= 64 ? await s.store.get(id) : null;
      if (!rec) throw new NotFound(`no session "${String(id).slice(0, 64)}"`);
      const q = req.query.sessionToken;
      const token = (typeof q === 'string' && q) || presentedToken(req.headers);
      if (!token || !tokenMatches(s.config.tokenSecret, rec.id, rec.nonce, token)) throw new Unauthorized('a valid session token is required (Bearer, X-Session-Token or ?sessionToken=)');
      s.store.touch(rec.id);
      res.locals.session = rec;
    })().then(() => next(), next);
  };
}

export const sessionOf = (res: { locals: Record<string, unknown> }) => res.locals.session as SessionRecord;
