import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { ErrorCode } from '@tessera/contracts';
import { assertOwner, createAuth, hasRole, createHttpApp, createLogger, finalizeHttpApp, signToken, type Auth, type TokenLookup } from '../src';
import { closeServer, serve } from './support';

const SECRET = 'auth-test-secret-0123456789-abcdefghij';
const ISSUER = 'https://id.tessera.test/';
const AUDIENCE = 'tessera-api';
const logger = createLogger('auth-test', 'silent');

/** An app whose routes read the token from different sources, as the services do. */
async function serveWith(auth: Auth) {
  const app = createHttpApp({ logger });
  const me = (lookup?: TokenLookup) => [auth.middleware(lookup), (req: any, res: any) => res.json(req.principal)];
  app.get('/me', ...me());
  app.get('/cookie-only', ...me([{ source: 'cookie', name: 'tessera_session' }]));
  app.get('/query-only', ...me([{ source: 'query', name: 'access_token' }]));
  app.get('/any-source', ...me([{ source: 'header' }, { source: 'cookie', name: 'tessera_session' }, { source: 'query', name: 'access_token' }]));
  app.get('/users/:user_id/apps/:app_id/chats', auth.middleware(), (req, res) => {
    assertOwner(req.principal, String(req.params.user_id), String(req.params.app_id));
    res.json({ ok: true });
  });
  finalizeHttpApp(app, logger);
  return serve(app);
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as any, res };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const sign = (claims: { sub: string; apps?: string[] | string; [k: string]: unknown }, opts: Parameters<typeof signToken>[2] = {}) =>
  signToken(SECRET, claims, { issuer: ISSUER, audience: AUDIENCE, ...opts });

describe('HS256 tokens', () => {
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ url, close } = await serveWith(createAuth({ enabled: true, secret: SECRET, issuer: ISSUER, audience: AUDIENCE })));
  });
  afterAll(() => close());

  it('a valid token gives its principal', async () => {
    const { status, body } = await get(`${url}/me`, bearer(await sign({ sub: 'user-1', apps: ['app-a', 'app-b'], role: 'member' })));
    expect(status).toBe(200);
    expect(body).toMatchObject({ sub: 'user-1', apps: ['app-a', 'app-b'], anonymous: false, claims: { role: 'member', iss: ISSUER, aud: AUDIENCE } });
  });

  it('an apps claim that is absent means any app; a space-separated string is a list', async () => {
    expect((await get(`${url}/me`, bearer(await sign({ sub: 'u' })))).body.apps).toBe('*');
    expect((await get(`${url}/me`, bearer(await sign({ sub: 'u', apps: 'app-a app-c' })))).body.apps).toEqual(['app-a', 'app-c']);
  });

  it.each([
    ['missing token', async () => ({}), 'missing token'],
    ['expired token', async () => bearer(await sign({ sub: 'user-1' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })), 'token expired'],
    ['wrong issuer', async () => bearer(await sign({ sub: 'user-1' }, { issuer: 'https://evil.test/' })), 'token claim "iss" is invalid'],
    ['no issuer', async () => bearer(await signToken(SECRET, { sub: 'user-1' }, { audience: AUDIENCE })), 'token claim "iss" is invalid'],
    ['wrong audience', async () => bearer(await sign({ sub: 'user-1' }, { audience: 'another-api' })), 'token claim "aud" is invalid'],
    ['bad signature', async () => bearer(await signToken('another-secret-0123456789-abcdefghijkl', { sub: 'user-1' }, { issuer: ISSUER, audience: AUDIENCE })), 'token signature is invalid'],
    ['tampered payload', async () => bearer(await tamper(await sign({ sub: 'user-1' }))), 'token signature is invalid'],
    ['malformed token', async () => bearer('not-a.jwt'), 'token is malformed'],
    ['no subject', async () => bearer(await sign({ sub: '' })), 'token has no subject'],
  ])('401 for %s, with a clear message', async (_name, headers, message) => {
    const { status, body, res } = await get(`${url}/me`, await headers());
    expect(status).toBe(401);
    expect(body).toEqual({ error: { code: ErrorCode.Unauthorized, message } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('a Basic Authorization header is not a token', async () => {
    const { status, body } = await get(`${url}/me`, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(status).toBe(401);
    expect(body.error.message).toBe('missing token');
  });

  describe('token sources, each only where the route enables it', () => {
    let token: string;
    beforeAll(async () => {
      token = await sign({ sub: 'user-src' });
    });
    const cookie = () => ({ cookie: `theme=dark; tessera_session=${encodeURIComponent(token)}` });

    it('Authorization header: the default source', async () => {
      expect((await get(`${url}/me`, bearer(token))).body.sub).toBe('user-src');
      expect((await get(`${url}/me`, cookie())).status).toBe(401);
      expect((await get(`${url}/me?access_token=${token}`)).status).toBe(401);
    });

    it('cookie: only on a route that reads the cookie', async () => {
      expect((await get(`${url}/cookie-only`, cookie())).body.sub).toBe('user-src');
      expect((await get(`${url}/cookie-only`, bearer(token))).status).toBe(401);
      expect((await get(`${url}/cookie-only`, { cookie: `session=${token}` })).status).toBe(401); // another cookie name
    });

    it('query parameter: only on a route that reads it', async () => {
      expect((await get(`${url}/query-only?access_token=${token}`)).body.sub).toBe('user-src');
      expect((await get(`${url}/query-only`, bearer(token))).status).toBe(401);
      expect((await get(`${url}/query-only`, cookie())).status).toBe(401);
    });

    it('a route with several sources takes any of them', async () => {
      for (const [path, headers] of [
        ['/any-source', bearer(token)],
        ['/any-source', cookie()],
        [`/any-source?access_token=${token}`, {}],
      ] as const)
        expect((await get(url + path, headers)).body.sub).toBe('user-src');
    });
  });

  describe('assertOwner', () => {
    it('lets the owner use an allowed app', async () => {
      const { status } = await get(`${url}/users/user-1/apps/app-a/chats`, bearer(await sign({ sub: 'user-1', apps: ['app-a'] })));
      expect(status).toBe(200);
    });

    it('403 for another user', async () => {
      const { status, body } = await get(`${url}/users/user-2/apps/app-a/chats`, bearer(await sign({ sub: 'user-1', apps: ['app-a'] })));
      expect(status).toBe(403);
      expect(body.error).toEqual({ code: ErrorCode.Forbidden, message: 'user_id does not match the token subject' });
    });

    it('403 for an app the token does not allow', async () => {
      const { status, body } = await get(`${url}/users/user-1/apps/app-b/chats`, bearer(await sign({ sub: 'user-1', apps: ['app-a'] })));
      expect(status).toBe(403);
      expect(body.error).toEqual({ code: ErrorCode.Forbidden, message: 'token does not allow app "app-b"' });
    });

    it('401 without a principal', () => {
      expect(() => assertOwner(undefined, 'user-1')).toThrow(expect.objectContaining({ status: 401 }));
    });
  });
});

describe('AUTH_ENABLED=false', () => {
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ url, close } = await serveWith(createAuth({ enabled: false, secret: SECRET, issuer: ISSUER, audience: AUDIENCE })));
  });
  afterAll(() => close());

  it('no token gives the development principal, which may act for any user and app', async () => {
    const { status, body } = await get(`${url}/me`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ sub: 'dev-user', apps: '*', anonymous: true });
    expect((await get(`${url}/users/someone-else/apps/any-app/chats`)).status).toBe(200);
  });

  it('a valid token still names its user; an invalid one falls back to the development principal', async () => {
    expect((await get(`${url}/me`, bearer(await sign({ sub: 'user-9' })))).body).toMatchObject({ sub: 'user-9', anonymous: false });
    expect((await get(`${url}/me`, bearer('garbage.token.here'))).body).toMatchObject({ sub: 'dev-user', anonymous: true });
  });
});

it('auth enabled with neither a secret nor a JWKS URL refuses to start', () => {
  expect(() => createAuth({ enabled: true })).toThrow(/neither a secret nor a JWKS URL/);
});

describe('JWKS (RS256 from an identity provider)', () => {
  let jwks: Server;
  let jwksUrl: string;
  let jwksFetches = 0;
  let privateKey: CryptoKey;
  let url: string;
  let close: () => Promise<void>;
  let auth: Auth;
  const KID = 'test-key-1';

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
    jwks = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    auth = createAuth({ enabled: true, jwksUrl, issuer: ISSUER, audience: AUDIENCE, appsClaim: 'tessera_apps' });
    ({ url, close } = await serveWith(auth));
  });
  afterAll(async () => {
    await close();
    await closeServer(jwks);
  });

  const rs256 = (claims: Record<string, unknown>, o: { key?: CryptoKey; kid?: string; iss?: string; aud?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? KID })
      .setIssuedAt()
      .setExpirationTime('5m')
      .setIssuer(o.iss ?? ISSUER)
      .setAudience(o.aud ?? AUDIENCE)
      .sign(o.key ?? privateKey);

  it('verifies an RS256 token against the published keys, with issuer and audience', async () => {
    const { status, body } = await get(`${url}/me`, bearer(await rs256({ sub: 'idp-user', tessera_apps: ['app-a'] })));
    expect(status).toBe(200);
    expect(body).toMatchObject({ sub: 'idp-user', apps: ['app-a'], anonymous: false });
    expect(jwksFetches).toBe(1);
    // The key set is cached between verifications.
    await auth.verify(await rs256({ sub: 'idp-user' }));
    expect(jwksFetches).toBe(1);
  });

  it.each([
    ['wrong issuer', () => rs256({ sub: 'u' }, { iss: 'https://other-idp.test/' }), 'token claim "iss" is invalid'],
    ['wrong audience', () => rs256({ sub: 'u' }, { aud: 'other-api' }), 'token claim "aud" is invalid'],
    ['HS256 token signed with a shared secret', () => sign({ sub: 'u' }), 'token algorithm is not allowed'],
  ])('401 for %s', async (_n, token, message) => {
    const { status, body } = await get(`${url}/me`, bearer(await token()));
    expect(status).toBe(401);
    expect(body.error.message).toBe(message);
  });

  it('401 for a token signed by a key the provider does not publish', async () => {
    const stranger = await generateKeyPair('RS256');
    const sameKid = await get(`${url}/me`, bearer(await rs256({ sub: 'u' }, { key: stranger.privateKey })));
    expect(sameKid.status).toBe(401);
    expect(sameKid.body.error.message).toBe('token signature is invalid');
    await expect(auth.verify(await rs256({ sub: 'u' }, { key: stranger.privateKey, kid: 'unknown-kid' }))).rejects.toMatchObject({
      status: 401,
      message: 'no key matches the token',
    });
  });
});

/** Change the payload of a signed token without re-signing it. */
async function tamper(token: string): Promise<string> {
  const [h, p, s] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.sub = 'admin';
  return [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
}

describe('token lifetime', () => {
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ url, close } = await serveWith(createAuth({ enabled: true, secret: SECRET, issuer: ISSUER, audience: AUDIENCE })));
  });
  afterAll(() => close());

  const now = () => Math.floor(Date.now() / 1000);
  /** An HS256 token with exactly these time claims (signToken always sets iat and exp). */
  const hs256 = (times: { iat?: number; exp?: number; nbf?: number }) => {
    const jwt = new SignJWT({ sub: 'user-1', ...times }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISSUER).setAudience(AUDIENCE);
    return jwt.sign(new TextEncoder().encode(SECRET));
  };

  it.each([
    ['no exp (it would never expire)', () => hs256({ iat: now() }), 'token has no expiry (exp)'],
    ['no exp and no iat', () => hs256({}), 'token has no expiry (exp)'],
    ['an iat ten years ahead', () => hs256({ iat: now() + 10 * 365 * 86_400, exp: now() + 11 * 365 * 86_400 }), 'token is issued in the future'],
    ['an iat a minute ahead', () => hs256({ iat: now() + 60, exp: now() + 3_600 }), 'token is issued in the future'],
    ['an nbf a minute ahead', () => hs256({ iat: now(), nbf: now() + 60, exp: now() + 3_600 }), 'token is not valid yet (nbf)'],
  ])('401 for a token with %s', async (_name, token, message) => {
    const { status, body } = await get(`${url}/me`, bearer(await token()));
    expect(status).toBe(401);
    expect(body).toEqual({ error: { code: ErrorCode.Unauthorized, message } });
  });

  it('forgives a few seconds of clock difference in iat and nbf', async () => {
    const { status } = await get(`${url}/me`, bearer(await hs256({ iat: now() + 3, nbf: now() + 3, exp: now() + 3_600 })));
    expect(status).toBe(200);
  });

  it('a verified token is taken again without a new check only as the same token, and each request gets its own principal', async () => {
    const auth = createAuth({ enabled: true, secret: SECRET, issuer: ISSUER, audience: AUDIENCE });
    const token = await sign({ sub: 'cached', apps: ['a1'] });
    const first = await auth.verify(token);
    (first.apps as string[]).push('stolen');
    first.claims.sub = 'someone-else';
    const again = await auth.verify(token);
    expect(again).toMatchObject({ sub: 'cached', apps: ['a1'], claims: { sub: 'cached' } });
    // One character off (the signature) is a different token: checked afresh, and refused.
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await expect(auth.verify(tampered)).rejects.toThrow('token signature is invalid');
    // Another secret's verifier does not share what this one verified.
    await expect(createAuth({ enabled: true, secret: `${SECRET}-other`, issuer: ISSUER, audience: AUDIENCE }).verify(token)).rejects.toThrow('token signature is invalid');
  });

  it('signToken always sets exp (one hour unless told) and iat', async () => {
    const claims = JSON.parse(Buffer.from((await signToken(SECRET, { sub: 'u' })).split('.')[1], 'base64url').toString());
    expect(claims.exp - claims.iat).toBe(3_600);
    expect(Math.abs(claims.iat - now())).toBeLessThanOrEqual(2);
  });
});

describe('hasRole', () => {
  const p = (claims: Record<string, unknown>) => ({ sub: 'u', apps: '*' as const, claims: { sub: 'u', ...claims }, anonymous: false });
  it('reads the role claim as an array, or as names separated by spaces or commas', () => {
    expect(hasRole(p({ roles: ['reader', 'operator'] }), 'roles', 'operator')).toBe(true);
    expect(hasRole(p({ roles: 'reader operator' }), 'roles', 'operator')).toBe(true);
    expect(hasRole(p({ roles: 'reader,operator' }), 'roles', 'operator')).toBe(true);
    expect(hasRole(p({ groups: ['operator'] }), 'groups', 'operator')).toBe(true);
  });
  it('is false for a missing claim, another claim, a prefix of the role, or a claim of another type', () => {
    expect(hasRole(p({}), 'roles', 'operator')).toBe(false);
    expect(hasRole(p({ groups: ['operator'] }), 'roles', 'operator')).toBe(false);
    expect(hasRole(p({ roles: 'operators' }), 'roles', 'operator')).toBe(false);
    expect(hasRole(p({ roles: { operator: true } }), 'roles', 'operator')).toBe(false);
  });
});
