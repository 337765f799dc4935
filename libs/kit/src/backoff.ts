export interface BackoffOptions {
  /** The first delay. */
  baseMs: number;
  /** No delay is longer. */
  maxMs: number;
  /** Each delay is this many times the one before (default 2). */
  factor?: number;
  /**
   * Spread the delays so that many clients that failed together do not retry together: each is
   * a random point in the upper half of its step ("equal jitter").
   */
  jitter?: boolean;
}

/**
 * The delay before retry `attempt` (0 for the first retry): `baseMs`, growing by `factor` up to
 * `maxMs`. Every server-side retry (Redis reconnects, reopened streams, jobs put back) takes its
 * delays from here, so that each names its bounds rather than writing its own formula.
 */
export function backoff({ baseMs, maxMs, factor = 2, jitter = false }: BackoffOptions): (attempt: number) => number {
  return (attempt) => {
    const step = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt));
    return jitter ? step / 2 + (Math.random() * step) / 2 : step;
  };
}
