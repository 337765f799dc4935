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
