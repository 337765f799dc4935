/**
 * Sliding-window rate limiting by two fixed windows: the previous window's count weighs by the
 * share of it still inside the sliding window (Cloudflare's estimate). Two counters per client,
 * no per-request list, accurate to within a few percent for steady traffic.
 */
export interface WindowPosition {
  /** Index of the current fixed window. */
  index: number;
  /** Milliseconds since the current window began. */
  elapsedMs: number;
}

export function windowAt(nowMs: number, windowMs: number): WindowPosition {
  return { index: Math.floor(nowMs / windowMs), elapsedMs: nowMs % windowMs };
}

/** Requests counted in the sliding window that ends now. */
export function estimate(prev: number, cur: number, elapsedMs: number, windowMs: number): number {
  return (prev * (windowMs - elapsedMs)) / windowMs + cur;
}

/** Milliseconds until one more request fits, for a client that has just been refused. */
export function retryAfterMs(limit: number, windowMs: number, elapsedMs: number, prev: number, cur: number): number {
  const toWindowEnd = windowMs - elapsedMs;
  if (cur >= limit) {
    // The current window alone is full: wait for it to end, then for its weight to fall below the limit.
    return toWindowEnd + Math.ceil(windowMs * (1 - limit / cur)) + 1;
  }
  if (prev <= 0) return 1;
  // Wait until the previous window's weight has shrunk enough for one more request.
  const t = toWindowEnd - ((limit - cur) * windowMs) / prev;
  return Math.max(1, Math.ceil(t) + 1);
}

/** What Retry-After says: whole seconds, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The atomic check-and-count, run by Redis: refuse when the sliding estimate is at the limit,
 * otherwise count the request. KEYS: current, previous window. ARGV: limit, window ms, elapsed ms.
 * Replies {allowed 0|1, current count, previous count}.
 */
export const SLIDING_WINDOW_LUA = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if prev * (window - elapsed) / window + cur >= limit then
  return {0, cur, prev}
end
cur = redis.call('INCR', KEYS[1])
if cur == 1 then redis.call('PEXPIRE', KEYS[1], window * 2) end
return {1, cur, prev}
`;
