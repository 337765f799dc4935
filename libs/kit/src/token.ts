import type { IncomingMessage } from 'node:http';
import { parse as parseCookieHeader } from 'cookie';

export type TokenSource = 'header' | 'cookie' | 'query';

/** One place a token may be found: the Authorization header, a cookie by name, or a query parameter by name. */
export interface TokenPlace {
  source: TokenSource;
  /** Cookie or query parameter name (not used for the header). */
  name?: string;
}

/**
 * Where every Tessera service and the gateway look for a token, so that what the edge accepts the
 * service behind it accepts too. HTTP: the Authorization header only (a cookie would make every
 * form post from another site an authenticated request). WebSocket upgrades, which browsers cannot
 * give headers: the `access_token` query parameter (document 003), `token` (document 002), the
 * header, then cookies; cross-site use of a cookie is refused by the Origin allow-list.
 */
export const TOKEN_PLACES: Record<'http' | 'ws', TokenPlace[]> = {
  http: [{ source: 'header' }],
  ws: [
    { source: 'query', name: 'access_token' },
    { source: 'query', name: 'token' },
    { source: 'header' },
    { source: 'cookie', name: 'access_token' },
    { source: 'cookie', name: 'token' },
    { source: 'cookie', name: 'session' },
  ],
};

/** The first token found in `places`, in order. Never throws, whatever the request holds. */
export function findToken(req: IncomingMessage, places: TokenPlace[]): string | undefined {
  let cookies: Record<string, string | undefined> | undefined;
  let query: URLSearchParams | undefined;
  for (const p of places) {
    let found: string | undefined;
    if (p.source === 'header') {
      const h = req.headers.authorization;
      if (h && /^Bearer\s+/i.test(h)) found = h.replace(/^Bearer\s+/i, '').trim();
    } else if (p.source === 'cookie') {
      cookies ??= parseCookies(req.headers.cookie);
      found = cookies[p.name ?? 'session'];
    } else {
      query ??= queryOf(req.url);
      found = query.get(p.name ?? 'access_token') ?? undefined;
    }
    if (found) return found;
  }
  return undefined;
}

/** Cookies of a header; a malformed one is skipped rather than thrown on. */
export function parseCookies(header: string | undefined): Record<string, string | undefined> {
  if (!header) return {};
  try {
    return parseCookieHeader(header);
  } catch {
    return {};
  }
}

function queryOf(url: string | undefined): URLSearchParams {
  const q = (url ?? '').indexOf('?');
  // URLSearchParams decodes leniently (a bad escape stays as typed): no request can make it throw.
  return new URLSearchParams(q < 0 ? '' : (url as string).slice(q + 1));
}
