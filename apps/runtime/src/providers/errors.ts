/**
 * Errors a provider's stream ends with. An aborted stream throws an `AbortError` (see
 * `ModelProvider.stream`); every other failure throws a `ModelProviderError` whose message is safe
 * to show a user: no API key, no request headers.
 */

/** The error every provider's iterator throws when its signal aborts. */
export function abortError(): Error {
  const e = new Error('The model call was aborted');
  e.name = 'AbortError';
  return e;
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}

export class ModelProviderError extends Error {
  override readonly name = 'ModelProviderError';
  constructor(
    message: string,
    /** HTTP status of the model server's answer, when it answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

// Shapes of credentials that model servers like to echo back in error bodies.
const SECRET_PATTERNS: RegExp[] = [
  /\b(sk|pk|rk)-[A-Za-z0-9_-]{6,}/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]+/gi,
  /\bx-api-key["':\s]+[A-Za-z0-9._-]+/gi,
];

/** Removes the given secrets and anything shaped like an API key from a message. */
export function redactSecrets(message: string, secrets: readonly (string | undefined)[] = []): string {
  let out = message;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  for (const re of SECRET_PATTERNS) out = out.replace(re, '***');
  return out;
}

/** A user-safe message for any error a model call produced. */
export function safeErrorMessage(e: unknown, secrets: readonly (string | undefined)[] = []): string {
  const raw = e instanceof Error ? e.message : typeof e === 'string' ? e : 'unknown error';
  return redactSecrets(raw.length > 500 ? `${raw.slice(0, 500)}…` : raw, secrets);
}
