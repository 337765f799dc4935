import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { authSettings, BaseEnv, checkBaseEnv, ConfigError, DEV_JWT_SECRET, env, loadConfig } from './config';

// A service schema built the way every app builds its own.
const ServiceEnv = BaseEnv.extend({ PORT: env.port(8080), UPSTREAM_URL: env.url() }).superRefine(checkBaseEnv);
const required = { UPSTREAM_URL: 'http://upstream:9000' };
const production = {
  ...required,
  NODE_ENV: 'production',
  JWT_SECRET: 'p'.repeat(40),
  SERVICE_KEY: 'production-service-key-0123456789',
};

function problemsOf(vars: Record<string, string | undefined>): ConfigError['problems'] {
  try {
    loadConfig(ServiceEnv, vars);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

function messageOf(vars: Record<string, string | undefined>): string {
  try {
    loadConfig(ServiceEnv, vars);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the defaults for local use', () => {
    const c = loadConfig(ServiceEnv, required);
    expect(c).toMatchObject({
      NODE_ENV: 'development',
      PORT: 8080,
      AUTH_ENABLED: true,
      HOST: '127.0.0.1',
      REDIS_URL: 'redis://127.0.0.1:6379',
      CORS_ORIGINS: ['http://localhost:3000', 'http://localhost:5173', 'http://localhost:8080', 'http://127.0.0.1:3000', 'http://127.0.0.1:5173', 'http://127.0.0.1:8080'],
      SHUTDOWN_TIMEOUT_MS: 10_000,
    });
    expect(authSettings(c).secret).toBe(DEV_JWT_SECRET);
  });

  it('coerces numbers, booleans and lists from strings', () => {
    const c = loadConfig(ServiceEnv, { ...required, PORT: '9001', AUTH_ENABLED: 'no', CORS_ORIGINS: 'https://a.example, https://b.example' });
    expect(c.PORT).toBe(9001);
    expect(c.AUTH_ENABLED).toBe(false);
    expect(c.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example']);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(ServiceEnv, { ...required, PORT: '' }).PORT).toBe(8080);
    expect(problemsOf({ UPSTREAM_URL: '' })).toEqual([{ variable: 'UPSTREAM_URL', reason: 'is required' }]);
  });

  it('names a missing variable and says it is required', () => {
    expect(problemsOf({})).toEqual([{ variable: 'UPSTREAM_URL', reason: 'is required' }]);
    expect(messageOf({})).toMatch(/UPSTREAM_URL: is required/);
  });

  it('names a variable of the wrong type with the reason, not "is required"', () => {
    const [p] = problemsOf({ ...required, PORT: 'eighty' });
    expect(p.variable).toBe('PORT');
    expect(p.reason).not.toBe('is required');
    expect(p.reason).toMatch(/number/i);
  });

  it('names each bad variable with its reason', () => {
    const problems = problemsOf({ ...required, AUTH_ENABLED: 'maybe', JWT_SECRET: 'short', PORT: '70000', UPSTREAM_URL: 'not a url' });
    const byVar = Object.fromEntries(problems.map((p) => [p.variable, p.reason]));
    expect(byVar.AUTH_ENABLED).toBe('must be true or false');
    expect(byVar.JWT_SECRET).toBe('must be at least 32 characters');
    expect(byVar.PORT).toMatch(/65535/);
    expect(byVar.UPSTREAM_URL).toMatch(/url/i);
    const message = messageOf({ ...required, AUTH_ENABLED: 'maybe' });
    expect(message).toContain('invalid configuration');
    expect(message).toContain('AUTH_ENABLED: must be true or false');
  });
});

describe('password files', () => {
  // DATABASE_URL is a service's own variable (runtime, observability, document-server), not BaseEnv's.
  const DbEnv = ServiceEnv.and(z.object({ DATABASE_URL: env.url('postgresql://tessera@127.0.0.1:5432/tessera') }));
  let dir: string;
  const file = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'kit-config-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("put the file's trimmed content into the URL as its password", () => {
    const c = loadConfig(DbEnv, {
      ...required,
      REDIS_URL: 'redis://redis:6379',
      REDIS_PASSWORD_FILE: file('redis', 'r3dis-pw\n'),
      DATABASE_URL: 'postgresql://tessera@postgres:5432/tessera?schema=runtime',
      DATABASE_PASSWORD_FILE: file('pg', '  pg/pw:with@signs \n'),
    });
    expect(c.REDIS_URL).toBe('redis://:r3dis-pw@redis:6379');
    const db = new URL(c.DATABASE_URL);
    expect([db.username, decodeURIComponent(db.password), db.host, db.searchParams.get('schema')]).toEqual(['tessera', 'pg/pw:with@signs', 'postgres:5432', 'runtime']);
  });

  it("replace a password the URL has, and apply to the URL's default", () => {
    expect(loadConfig(ServiceEnv, { ...required, REDIS_URL: 'redis://:old@redis:6379', REDIS_PASSWORD_FILE: file('r2', 'new') }).REDIS_URL).toBe('redis://:new@redis:6379');
    expect(loadConfig(ServiceEnv, { ...required, REDIS_PASSWORD_FILE: file('r3', 'x') }).REDIS_URL).toBe('redis://:x@127.0.0.1:6379');
  });

  it('change nothing when unset or empty, and are ignored by a service without the URL', () => {
    expect(loadConfig(DbEnv, { ...required, REDIS_PASSWORD_FILE: '', DATABASE_URL: 'postgresql://u:p@h/db' })).toMatchObject({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgresql://u:p@h/db' });
    expect(loadConfig(ServiceEnv, { ...required, DATABASE_PASSWORD_FILE: join(dir, 'missing') })).not.toHaveProperty('DATABASE_URL');
  });

  it('name a file that cannot be read, or is empty', () => {
    expect(problemsOf({ ...required, REDIS_PASSWORD_FILE: join(dir, 'missing') })).toEqual([{ variable: 'REDIS_PASSWORD_FILE', reason: 'cannot be read (ENOENT)' }]);
    expect(problemsOf({ ...required, REDIS_PASSWORD_FILE: file('blank', ' \n') })).toEqual([{ variable: 'REDIS_PASSWORD_FILE', reason: 'is empty' }]);
    if (process.getuid?.() !== 0) {
      chmodSync(file('locked', 'x'), 0o000);
      expect(problemsOf({ ...required, REDIS_PASSWORD_FILE: join(dir, 'locked') })).toEqual([{ variable: 'REDIS_PASSWORD_FILE', reason: 'cannot be read (EACCES)' }]);
    }
  });
});

describe('checkBaseEnv', () => {
  it('accepts a complete production configuration', () => {
    expect(loadConfig(ServiceEnv, production).NODE_ENV).toBe('production');
  });

  it('refuses AUTH_ENABLED=false in production', () => {
    expect(problemsOf({ ...production, AUTH_ENABLED: 'false' })).toEqual([
      { variable: 'AUTH_ENABLED', reason: 'AUTH_ENABLED=false is refused when NODE_ENV=production' },
    ]);
    // The same setting is fine for local development.
    expect(loadConfig(ServiceEnv, { ...required, AUTH_ENABLED: 'false' }).AUTH_ENABLED).toBe(false);
  });

  it('refuses the development JWT secret, or none, in production', () => {
    for (const secret of [DEV_JWT_SECRET, undefined]) {
      const problems = problemsOf({ ...production, JWT_SECRET: secret });
      expect(problems).toEqual([{ variable: 'JWT_SECRET', reason: expect.stringMatching(/not the development default/) }]);
    }
  });

  it('refuses the development service key in production', () => {
    expect(problemsOf({ ...production, SERVICE_KEY: undefined }).map((p) => p.variable)).toEqual(['SERVICE_KEY']);
  });

  it('accepts a JWKS URL instead of a secret in production', () => {
    const c = loadConfig(ServiceEnv, {
      ...production,
      JWT_SECRET: undefined,
      JWKS_URL: 'https://id.example/jwks.json',
      JWT_ISSUER: 'https://id.example/',
      JWT_AUDIENCE: 'tessera',
    });
    expect(authSettings(c)).toMatchObject({ jwksUrl: 'https://id.example/jwks.json', secret: undefined, issuer: 'https://id.example/', audience: 'tessera' });
  });

  it('refuses JWKS_URL without its issuer and audience, naming each missing one', () => {
    const jwks = { ...required, JWKS_URL: 'https://id.example/jwks.json' };
    expect(problemsOf(jwks)).toEqual([
      { variable: 'JWT_ISSUER', reason: 'is required with JWKS_URL' },
      { variable: 'JWT_AUDIENCE', reason: 'is required with JWKS_URL' },
    ]);
    expect(problemsOf({ ...jwks, JWT_ISSUER: 'https://id.example/' })).toEqual([{ variable: 'JWT_AUDIENCE', reason: 'is required with JWKS_URL' }]);
    expect(problemsOf({ ...jwks, JWT_AUDIENCE: 'tessera' })).toEqual([{ variable: 'JWT_ISSUER', reason: 'is required with JWKS_URL' }]);
  });

  it('is a plain zod refinement, usable on any extended schema', () => {
    const Other = BaseEnv.extend({ EXTRA: z.string().default('x') }).superRefine(checkBaseEnv);
    expect(() => loadConfig(Other, { NODE_ENV: 'production', AUTH_ENABLED: '0' })).toThrow(ConfigError);
  });
});
