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

/** Deep copy with secret-named keys replaced and secrets in strings hidden. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[DEPTH]';
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redactText(value.message), stack: value.stack && redactText(value.stack) };
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? REDACTED : redact(v, depth + 1);
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
