import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** `https://Scada.Example.com:443/x/` and `https://scada.example.com/x` are one SCADA. */
export function normalizeScadaUrl(raw: string): string {
  const u = new URL(raw.trim());
  u.hash = '';
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.protocol}//${u.host}${path}${u.search}`;
}

/** The token itself, whether or not the host sent it with its scheme. */
export function normalizeAccessToken(raw: string): string {
  return raw.trim().replace(/^bearer\s+/i, '');
}

/**
 * The reuse key: one agent server per (app, user, SCADA, access token), so two users who send the
 * same pair never share a server. Also what logs name a token by.
 */
export function reuseKeyOf(owner: { appId: string; userId: string }, scadaUrl: string, accessToken: string): string {
  return createHash('sha256')
    .update(JSON.stringify([owner.appId, owner.userId, normalizeScadaUrl(scadaUrl), normalizeAccessToken(accessToken)]))
    .digest('hex');
}

/** A SCADA URL as the servers list shows it: origin and path (a query string may carry credentials). */
export function displayScadaUrl(scadaUrl: string): string {
  const u = new URL(scadaUrl);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

export const newNonce = () => randomBytes(16).toString('base64url');
export const newPassword = () => randomBytes(24).toString('base64url');

/**
 * A session token is an HMAC of the session and a nonce kept with it: every instance can check
 * it, a reused session hands out the same token again, and Redis never holds the token.
 */
export function sessionTokenOf(secret: string, sessionId: string, nonce: string): string {
  return createHmac('sha256', secret).update(`${sessionId}.${nonce}`).digest('base64url');
}

export function tokenMatches(secret: string, sessionId: string, nonce: string, presented: string): boolean {
  const expected = Buffer.from(sessionTokenOf(secret, sessionId, nonce));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
