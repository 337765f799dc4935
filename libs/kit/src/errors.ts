import { ErrorCode } from '@tessera/contracts';
import type { z } from 'zod';

/** An error that maps to one HTTP status and the shared error body. Domain code throws these. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends HttpError {
  constructor(message: string, details?: unknown, code: string = ErrorCode.BadRequest) {
    super(400, code, message, details);
  }
}
export class Unauthorized extends HttpError {
  constructor(message = 'authentication required', details?: unknown) {
    super(401, ErrorCode.Unauthorized, message, details, { 'WWW-Authenticate': 'Bearer' });
  }
}
export class Forbidden extends HttpError {
  constructor(message = 'not allowed', details?: unknown) {
    super(403, ErrorCode.Forbidden, message, details);
  }
}
export class NotFound extends HttpError {
  constructor(message = 'not found', details?: unknown) {
    super(404, ErrorCode.NotFound, message, details);
  }
}
export class Conflict extends HttpError {
  constructor(message: string, details?: unknown) {
    super(409, ErrorCode.Conflict, message, details);
  }
}
export class TooLarge extends HttpError {
  constructor(message = 'payload too large', details?: unknown) {
    super(413, ErrorCode.TooLarge, message, details);
  }
}
export class TooManyRequests extends HttpError {
  constructor(retryAfterS: number) {
    super(429, ErrorCode.RateLimited, 'too many requests', { retry_after_s: retryAfterS }, { 'Retry-After': String(retryAfterS) });
  }
}
/** A caller holds as much of a limited resource as it may (its quota, named in the message); not a rate. */
export class QuotaExceeded extends HttpError {
  constructor(message: string, details?: unknown) {
    super(429, ErrorCode.QuotaExceeded, message, details);
  }
}
export class Unavailable extends HttpError {
  constructor(message = 'service unavailable', details?: unknown) {
    super(503, ErrorCode.Unavailable, message, details);
  }
}
export class BadGateway extends HttpError {
  constructor(message = 'bad gateway', details?: unknown) {
    super(502, ErrorCode.BadGateway, message, details);
  }
}

/** zod issues as `{path, message}` with a dotted path, e.g. `body.user_id`. */
export function zodIssues(error: z.ZodError, prefix?: string): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter((p) => p !== undefined && p !== '').join('.') || (prefix ?? '(root)'),
    message: i.message,
  }));
}

/** Parse a value with a contract schema; a failure is a 400 naming each failing path. */
export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = zodIssues(r.error, where);
  throw new BadRequest(`invalid ${where}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues }, ErrorCode.ValidationFailed);
}
