import { types } from 'node:util';
import winston from 'winston';

export type Logger = winston.Logger;

const SECRET_KEY = /(pass(word)?|secret|token|authorization|cookie|api[-_]?key|credential|jwt|session[-_]?key)/i;
const SECRET_IN_TEXT = [
  /((?:access_token|token|api_key|apikey|password|secret)=)[^&\s"']+/gi,
  /(Bearer\s+)[A-Za-z0-9._~+/=-]+/g,
  /\b(eyJ[A-Za-z0-9_-]{5,})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g,
  /(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi,
];
export const REDACTED = '[REDACTED]';

/** Hide secrets in a string: tokens in URLs, Bearer credentials, bare JWTs, URL passwords. */
export function redactText(s: string): string {
  let out = s;
  out = out.replace(SECRET_IN_TEXT[0], `$1${REDACTED}`);
  out = out.replace(SECRET_IN_TEXT[1], `$1${REDACTED}`);
  out = out.replace(SECRET_IN_TEXT[2], REDACTED);
  out = out.replace(SECRET_IN_TEXT[3], `$1${REDACTED}@`);
  return out;
}

/** Bounds of one log entry: an error from a dependency (Prisma's carries its query and source) or a client's value must not make a line huge. */
export const LOG_BOUNDS = { string: 2_000, errorMessage: 300, stackFrames: 6, items: 50, depth: 8 } as const;

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[+${s.length - max} chars]`;
}

// Errors made by Node itself (a socket's ECONNREFUSED) come from another realm under jest's vm: not `instanceof Error` there.
const isError = (v: unknown): v is Error => v instanceof Error || types.isNativeError(v);

/** An error as a short record: name, code, the start of its message, the first frames of its stack. */
export function errorSummary(err: unknown): { name: string; code?: string; message: string; stack?: string } {
  if (!isError(err)) return { name: typeof err, message: clip(redactText(String(err)), LOG_BOUNDS.errorMessage) };
  const code = (err as { code?: unknown }).code;
  const frames = (err.stack ?? '')
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, LOG_BOUNDS.stackFrames)
    .map((l) => clip(l.trim(), 200));
  return {
    name: err.name,
    ...(typeof code === 'string' || typeof code === 'number' ? { code: String(code) } : {}),
    message: clip(redactText(err.message), LOG_BOUNDS.errorMessage),
    ...(frames.length ? { stack: redactText(frames.join('\n')) } : {}),
  };
}

/** Deep copy with secret-named keys replaced, secrets in strings hidden, and everything bounded. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > LOG_BOUNDS.depth) return '[DEPTH]';
  if (typeof value === 'string') return clip(redactText(value), LOG_BOUNDS.string);
  if (Array.isArray(value)) {
    const out = value.slice(0, LOG_BOUNDS.items).map((v) => redact(v, depth + 1));
    if (value.length > LOG_BOUNDS.items) out.push(`[+${value.length - LOG_BOUNDS.items} items]`);
    return out;
  }
  if (isError(value)) return errorSummary(value);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value);
    for (const [k, v] of entries.slice(0, LOG_BOUNDS.items)) out[k] = SECRET_KEY.test(k) ? REDACTED : redact(v, depth + 1);
    if (entries.length > LOG_BOUNDS.items) out['…'] = `[+${entries.length - LOG_BOUNDS.items} keys]`;
    return out;
  }
  return value;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'timestamp') continue;
    (info as Record<string, unknown>)[key] = SECRET_KEY.test(key) ? REDACTED : redact((info as Record<string, unknown>)[key]);
  }
  return info;
});

export function createLogger(service: string, level: string = 'info'): Logger {
  return winston.createLogger({
    level: level === 'silent' ? 'error' : level,
    silent: level === 'silent',
    defaultMeta: { service },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), redactFormat(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
  });
}
