import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { bridge } from '@tessera/contracts';
import { BadRequest, findToken, Forbidden, hasRole, NotFound, SERVICE_KEY_HEADER, Unauthorized, type Auth, type Principal } from '@tessera/kit';
import type { BridgeConfig } from '../config';
import type { SessionRecord } from '../store/sessions';
import { tokenMatches } from './tokens';

/** Whose a session is: the app it belongs to and the user who bootstrapped it. */
export interface Owner {
  appId: string;
  userId: string;
}

/**
 * Who calls the bridge, and what it reaches:
 * - the service key (another Tessera service, a trusted backend): it names the app and user a
 *   session is for, and is never refused a session's routes;
 * - a platform token (through the gateway, or sent to the bridge itself): an operator
 *   (OPERATOR_CLAIM holding OPERATOR_ROLE) reaches every session of the token's apps, anyone else
 *   their own;
 * - a session's own token, which only its owner and its agent server's MCP callback hold: that
 *   one session.
 */
export const SESSION_TOKEN_HEADER = 'x-session-token';

/** Who asks for a session: the service key, or a platform token's principal. */
export type Bootstrapper = { kind: 'service' } | { kind: 'user'; principal: Principal };

/** A session a caller may use; `owner` is false for an app's operator looking at someone else's. */
export interface Granted {
  rec: SessionRecord;
  owner: boolean;
}

export interface Access {
  /** Bootstrap, before its body is read: a platform token or the service key (401 otherwise). */
  bootstrapper(req: IncomingMessage): Promise<Bootstrapper>;
  /** The owner a new session of this caller gets, from what its body names. */
  ownerOf(who: Bootstrapper, body: Pick<bridge.BootstrapBody, 'appId' | 'userId'>): Owner;
  /** The servers list: operators (their apps) and services (every app). */
  operatorApps(req: IncomingMessage): Promise<'*' | string[]>;
  /**
   * A session route or socket: the session if this caller may use it. A session of another app or
   * user is as absent as one that never existed (404); no credential at all is a 401.
   */
  session(req: IncomingMessage, id: string, lookup: (id: string) => Promise<SessionRecord | null>, kind: 'http' | 'ws'): Promise<Granted>;
}

export function createAccess(config: BridgeConfig, auth: Auth): Access {
  const serviceKey = Buffer.from(config.SERVICE_KEY);

  function isOperator(p: Principal): boolean {
    return p.anonymous || hasRole(p, config.OPERATOR_CLAIM, config.OPERATOR_ROLE);
  }

  /** The service key when sent (a wrong one is a 401, never a fall-through to weaker checks). */
  function service(req: IncomingMessage): boolean {
    const v = req.headers[SERVICE_KEY_HEADER];
    if (v === undefined) return false;
    const given = Buffer.from(Array.isArray(v) ? v[0] : v);
    if (given.length === serviceKey.length && timingSafeEqual(given, serviceKey)) return true;
    throw new Unauthorized('invalid service key');
  }

  /** The platform token's principal; null when none is sent. With AUTH_ENABLED=false, the development stand-in. */
  async function user(req: IncomingMessage, kind: 'http' | 'ws', except?: string): Promise<{ principal: Principal; operator: boolean } | null> {
    if (!auth.enabled) return { principal: await auth.authenticate(req, kind), operator: true };
    const token = auth.tokenFrom(req, kind);
    if (!token || token === except) return null;
    const principal = await auth.verify(token);
    return { principal, operator: isOperator(principal) };
  }

  return {
    async bootstrapper(req) {
      if (service(req)) return { kind: 'service' };
      const c = await user(req, 'http');
      if (!c) throw new Unauthorized('a platform token (Authorization: Bearer) or the service key is required');
      return { kind: 'user', principal: c.principal };
    },

    ownerOf(who, body) {
      if (who.kind === 'service') {
        if (!body.appId || !body.userId) throw new BadRequest('with the service key, name the app and the user the session is for (appId, userId)');
        return { appId: body.appId, userId: body.userId };
      }
      const p = who.principal;
      if (body.userId !== undefined && body.userId !== p.sub && !p.anonymous) throw new Forbidden('userId does not match the token subject');
      const userId = p.anonymous ? (body.userId ?? p.sub) : p.sub;
      if (body.appId !== undefined) {
        if (p.apps !== '*' && !p.apps.includes(body.appId)) throw new Forbidden(`this token may not use app "${body.appId}"`);
        return { appId: body.appId, userId };
      }
      if (p.apps === '*') {
        if (p.anonymous) return { appId: config.DEFAULT_APP_ID, userId };
        throw new BadRequest("this token allows any app: name the session's app (appId)");
      }
      if (p.apps.length !== 1) throw new BadRequest(`this token allows ${p.apps.length} apps: name the session's app (appId)`);
      return { appId: p.apps[0], userId };
    },

    async operatorApps(req) {
      if (service(req)) return '*';
      const c = await user(req, 'http');
      if (!c) throw new Unauthorized('an operator token (Authorization: Bearer) or the service key is required');
      if (!c.operator) throw new Forbidden(`listing agent servers needs an operator token (claim "${config.OPERATOR_CLAIM}" holding "${config.OPERATOR_ROLE}")`);
      return c.principal.anonymous ? '*' : c.principal.apps;
    },

    async session(req, id, lookup, kind) {
      const own = sessionTokenOf(req);
      const isService = service(req);
      // A platform token: wherever the kit looks, unless what is there is the session's own token.
      const platform = isService ? null : await user(req, kind, own);
      if (!isService && !platform && !own) throw new Unauthorized('a platform token, the service key or the session token (X-Session-Token, ?sessionToken=) is required');
      const rec = id.length <= 64 ? await lookup(id) : null;
      const gone = new NotFound(`no session "${id.slice(0, 64)}"`);
      if (!rec) throw gone;
      if (isService) return { rec, owner: true };
      if (platform) {
        const p = platform.principal;
        const inApp = p.anonymous || p.apps === '*' || p.apps.includes(rec.appId);
        if (inApp && p.sub === rec.userId) return { rec, owner: true };
        if (inApp && platform.operator) return { rec, owner: false };
        throw gone;
      }
      if (own && tokenMatches(config.tokenSecret, rec.id, rec.nonce, own)) return { rec, owner: true };
      throw gone;
    },
  };
}

/**
 * The session token: `X-Session-Token`, `?sessionToken=`, or a Bearer that is not a JWT (document
 * 004's clients talk to the bridge directly with it; behind the gateway Authorization carries the
 * platform token).
 */
export function sessionTokenOf(req: IncomingMessage): string | undefined {
  const own = req.headers[SESSION_TOKEN_HEADER];
  if (typeof own === 'string' && own) return own;
  const q = findToken(req, [{ source: 'query', name: 'sessionToken' }]);
  if (q) return q;
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m && m[1].split('.').length !== 3 ? m[1] : undefined;
}

