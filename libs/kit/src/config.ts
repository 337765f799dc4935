import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseRedisUrl, redisUrlWithPassword } from './redis';

/**
 * Service configuration from the environment: one zod schema per service, read once in main.ts.
 * A bad or missing variable stops the start with its name and the reason.
 */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; reason: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.reason}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  // Empty strings mean "unset" so that `FOO= npm start` falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const r = schema.safeParse(cleaned);
  if (r.success) return withPasswordFiles(r.data, cleaned);
  throw new ConfigError(
    r.error.issues.map((i) => ({
      variable: i.path.length ? i.path.map(String).join('.') : '(config)',
      // zod 4 leaves `input` off issues, so whether the variable was set is read from the env itself.
      reason: i.code === 'invalid_type' && cleaned[String(i.path[0])] === undefined ? 'is required' : i.message,
    })),
  );
}

/**
 * URL variables whose password may come from a file (Docker / Kubernetes secrets): when the file
 * variable is set, the file's content, trimmed, becomes the password of the URL (given or default).
 */
export const PASSWORD_FILES = { REDIS_URL: 'REDIS_PASSWORD_FILE', DATABASE_URL: 'DATABASE_PASSWORD_FILE' } as const;

function withPasswordFiles<T>(config: T, env: Record<string, string | undefined>): T {
  if (!config || typeof config !== 'object') return config;
  const c = config as Record<string, unknown>;
  const problems: ConfigError['problems'] = [];
  for (const [urlVar, fileVar] of Object.entries(PASSWORD_FILES)) {
    const file = env[fileVar];
    const url = c[urlVar];
    if (!file || typeof url !== 'string') continue;
    let password: string;
    try {
      password = readFileSync(file, 'utf8').trim();
    } catch (e) {
      problems.push({ variable: fileVar, reason: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
      continue;
    }
    if (!password) {
      problems.push({ variable: fileVar, reason: 'is empty' });
      continue;
    }
    c[urlVar] = urlVar === 'REDIS_URL' ? redisUrlWithPassword(url, password) : withPassword(url, password);
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** Reusable env field types. */
export const env = {
  port: (def: number) => z.coerce.number().int().min(0).max(65535).default(def),
  bool: (def: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  url: (def?: string) => (def === undefined ? z.url() : z.url().default(def)),
  list: (def: string[] = []) =>
    z
      .string()
      .default(def.join(','))
      .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  int: (def: number, min = 0) => z.coerce.number().int().min(min).default(def),
};

export const DEV_JWT_SECRET = 'tessera-dev-secret-change-me-0123456789';
export const DEV_SERVICE_KEY = 'tessera-dev-service-key-change-me';
/** Header by which one Tessera service proves itself to another (the gateway strips it from clients). */
export const SERVICE_KEY_HEADER = 'x-tessera-service-key';

/** What every service reads: environment, logging, auth, CORS. Extend it with `.extend({...})`. */
export const BaseEnv = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'debug', 'silent']).default('info'),
  /** Listen address: this machine only unless set (containers set 0.0.0.0). */
  HOST: z.string().default('127.0.0.1'),
  /** One Redis, a cluster or a Sentinel group: the forms are in `parseRedisUrl`. */
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .superRefine((v, ctx) => {
      try {
        parseRedisUrl(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message.replace(/^REDIS_URL:? ?/, '') });
      }
    }),
  /** A file holding REDIS_URL's password (e.g. /run/secrets/redis_password); DATABASE_PASSWORD_FILE the same for DATABASE_URL. */
  REDIS_PASSWORD_FILE: z.string().optional(),
  DATABASE_PASSWORD_FILE: z.string().optional(),
  AUTH_ENABLED: env.bool(true),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWKS_URL: z.url().optional(),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
  /** Claim listing the app ids a token may use (array or space-separated string). */
  JWT_APPS_CLAIM: z.string().default('apps'),
  /** Shared key of trusted service-to-service calls (e.g. broker → runtime backend context). */
  SERVICE_KEY: z.string().min(16, 'must be at least 16 characters').default(DEV_SERVICE_KEY),
  CORS_ORIGINS: env.list(['http://localhost:3000', 'http://localhost:5173', 'http://localhost:8080', 'http://127.0.0.1:3000', 'http://127.0.0.1:5173', 'http://127.0.0.1:8080']),
  BODY_LIMIT: z.string().default('1mb'),
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 100),
});
export type BaseEnv = z.infer<typeof BaseEnv>;

/** Cross-field rules of BaseEnv, applied with `.superRefine(checkBaseEnv)` on a service schema. */
export function checkBaseEnv(c: BaseEnv, ctx: z.RefinementCtx): void {
  if (c.NODE_ENV === 'production') {
    if (!c.AUTH_ENABLED) ctx.addIssue({ code: 'custom', path: ['AUTH_ENABLED'], message: 'AUTH_ENABLED=false is refused when NODE_ENV=production' });
    if (!c.JWKS_URL && (!c.JWT_SECRET || c.JWT_SECRET === DEV_JWT_SECRET))
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'set JWT_SECRET (not the development default) or JWKS_URL in production' });
  }
  if (c.NODE_ENV === 'production' && c.SERVICE_KEY === DEV_SERVICE_KEY)
    ctx.addIssue({ code: 'custom', path: ['SERVICE_KEY'], message: 'set SERVICE_KEY (not the development default) in production' });
  if (c.JWKS_URL) {
    for (const v of ['JWT_ISSUER', 'JWT_AUDIENCE'] as const) if (!c[v]) ctx.addIssue({ code: 'custom', path: [v], message: 'is required with JWKS_URL' });
  }
}

/** The auth settings of a parsed config, as `createAuth` takes them. */
export function authSettings(c: BaseEnv) {
  return {
    enabled: c.AUTH_ENABLED,
    secret: c.JWKS_URL ? undefined : (c.JWT_SECRET ?? DEV_JWT_SECRET),
    jwksUrl: c.JWKS_URL,
    issuer: c.JWT_ISSUER,
    audience: c.JWT_AUDIENCE,
    appsClaim: c.JWT_APPS_CLAIM,
  };
}
