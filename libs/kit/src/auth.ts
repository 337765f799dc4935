import { webcrypto } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { createRemoteJWKSet, jwtVerify, SignJWT, errors as joseErrors, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { Forbidden, Unauthorized } from './errors';
import { findToken, TOKEN_PLACES, type TokenPlace } from './token';

export interface AuthSettings {
  enabled: boolean;
  /** HS256 shared secret (local use). */
  secret?: string;
  /** Or: a JWKS URL with issuer and audience (Firebase session cookies, Keycloak, Auth0). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  /** Claim that lists the app ids the token may use; absent claim = any app. */
  appsClaim?: string;
}

export interface Principal {
  sub: string;
  /** App ids this principal may use; `'*'` means any. */
  apps: string[] | '*';
  claims: JWTPayload & Record<string, unknown>;
  /** True when auth is disabled and the principal is the development stand-in. */
  anonymous: boolean;
}

/**
 * Where to look for a token: `'http'` or `'ws'` for the places every Tessera service uses
 * (TOKEN_PLACES), or a list of places of one's own.
 */
export type TokenLookup = 'http' | 'ws' | TokenPlace[];

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export interface Auth {
  readonly enabled: boolean;
  verify(token: string): Promise<Principal>;
  /** Reads the token from the enabled sources of an HTTP request or WebSocket upgrade. */
  tokenFrom(req: IncomingMessage, lookup?: TokenLookup): string | undefined;
  /** Verifies the request's token; with auth disabled, a development principal. */
  authenticate(req: IncomingMessage, lookup?: TokenLookup): Promise<Principal>;
  /** Express middleware: sets `req.principal` or answers 401. */
  middleware(lookup?: TokenLookup): RequestHandler;
}

const DEV_PRINCIPAL: Principal = { sub: 'dev-user', apps: '*', claims: { sub: 'dev-user' }, anonymous: true };

export function createAuth(s: AuthSettings): Auth {
  const appsClaim = s.appsClaim ?? 'apps';
  let key: JWTVerifyGetKey | undefined;
  if (s.jwksUrl) key = createRemoteJWKSet(new URL(s.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
  else if (s.secret) {
    // Imported once: given the secret's bytes, jose imports a WebCrypto key on every verify (about
    // 40% of a verify's CPU, paid by every request).
    const secret = new TextEncoder().encode(s.secret);
    let imported: ReturnType<typeof webcrypto.subtle.importKey> | undefined;
    key = () => (imported ??= webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']));
  }
  if (s.enabled && !key) throw new Error('auth is enabled but neither a secret nor a JWKS URL is configured');

  // Verified tokens, until they expire and for a minute at most: a client sends the same token with
  // every request, and each verification is a signature check. Bounded by their total length.
  const verified = new LRUCache<string, Principal>({ maxSize: 8 * 1024 * 1024, sizeCalculation: (_p, token) => token.length + 256, ttl: VERIFIED_TTL_MS });

  async function verify(token: string): Promise<Principal> {
    if (!key) throw new Unauthorized('auth is not configured');
    // Copies out: what one request does to its principal never reaches the next one's.
    const copy = (p: Principal): Principal => ({ ...p, apps: p.apps === '*' ? '*' : [...p.apps], claims: { ...p.claims } });
    const known = verified.get(token);
    if (known) return copy(known);
    const principal = await verifyAfresh(token, key);
    const expiresInMs = (principal.claims.exp as number) * 1000 - Date.now();
    if (expiresInMs > 0) verified.set(token, principal, { ttl: Math.min(VERIFIED_TTL_MS, expiresInMs) });
    return copy(principal);
  }

  async function verifyAfresh(token: string, key: JWTVerifyGetKey): Promise<Principal> {
    try {
      const { payload } = await jwtVerify(token, key, {
        issuer: s.issuer,
        audience: s.audience,
        algorithms: s.jwksUrl ? ['RS256', 'ES256', 'RS384', 'RS512', 'ES384', 'PS256'] : ['HS256'],
        clockTolerance: CLOCK_TOLERANCE_S,
        // A token without an expiry would be valid forever once leaked.
        requiredClaims: ['exp'],
      });
      // jose checks `iat` only with maxTokenAge; a token "issued" in the future is forged or from a broken clock.
      if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_S) throw new Unauthorized('token is issued in the future');
      if (!payload.sub) throw new Unauthorized('token has no subject');
      return { sub: payload.sub, apps: appsOf(payload[appsClaim]), claims: payload as Principal['claims'], anonymous: false };
    } catch (e) {
      if (e instanceof Unauthorized) throw e;
      throw new Unauthorized(describeJoseError(e));
    }
  }

  function tokenFrom(req: IncomingMessage, lookup: TokenLookup = 'http'): string | undefined {
    return findToken(req, typeof lookup === 'string' ? TOKEN_PLACES[lookup] : lookup);
  }

  async function authenticate(req: IncomingMessage, lookup?: TokenLookup): Promise<Principal> {
    const token = tokenFrom(req, lookup);
    if (!s.enabled) {
      // Local development: a token, when sent, still names the user; none means the dev user.
      if (token && key) return verify(token).catch(() => DEV_PRINCIPAL);
      return DEV_PRINCIPAL;
    }
    if (!token) throw new Unauthorized('missing token');
    return verify(token);
  }

  return {
    enabled: s.enabled,
    verify,
    tokenFrom,
    authenticate,
    middleware: (lookup) => async (req, _res, next) => {
      try {
        req.principal = await authenticate(req, lookup);
        next();
      } catch (e) {
        next(e);
      }
    },
  };
}

function appsOf(claim: unknown): string[] | '*' {
  if (claim === undefined || claim === null) return '*';
  if (Array.isArray(claim)) return claim.map(String);
  if (typeof claim === 'string') return claim === '*' ? '*' : claim.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Seconds of clock difference between the token's issuer and this machine that are forgiven. */
const CLOCK_TOLERANCE_S = 5;
/** How long a verified token is taken without a new signature check (never past its expiry). */
const VERIFIED_TTL_MS = 60_000;

function describeJoseError(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'exp' && e.reason === 'missing') return 'token has no expiry (exp)';
  if (e instanceof joseErrors.JWTClaimValidationFailed && e.claim === 'nbf') return 'token is not valid yet (nbf)';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `token claim "${e.claim}" is invalid`;
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm is not allowed';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token';
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return 'token is malformed';
  return 'token is invalid';
}

/** The principal must be the user named in a path or body, and may use the app. */
export function assertOwner(p: Principal | undefined, userId: string, appId?: string): void {
  if (!p) throw new Unauthorized();
  if (p.anonymous) return;
  if (p.sub !== userId) throw new Forbidden('user_id does not match the token subject');
  if (appId !== undefined && !canUseApp(p, appId)) throw new Forbidden(`token does not allow app "${appId}"`);
}

export function canUseApp(p: Principal, appId: string): boolean {
  return p.apps === '*' || p.apps.includes(appId);
}

/**
 * Whether a token's role claim (a string of names separated by spaces or commas, or an array)
 * holds `role`: how every service tells an operator (OPERATOR_CLAIM holding OPERATOR_ROLE). The
 * development stand-in (auth disabled) is each caller's own decision, not this one's.
 */
export function hasRole(p: Principal, claim: string, role: string): boolean {
  const v = p.claims[claim];
  const roles = Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/[\s,]+/) : [];
  return roles.includes(role);
}

/** Mint an HS256 token (development tokens, tests). */
export async function signToken(
  secret: string,
  claims: { sub: string; apps?: string[] | string; [k: string]: unknown },
  opts: { expiresIn?: string | number; issuer?: string; audience?: string } = {},
): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt().setExpirationTime(opts.expiresIn ?? '1h');
  if (opts.issuer) jwt = jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt = jwt.setAudience(opts.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
