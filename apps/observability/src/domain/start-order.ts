/** What orders an event by when it started. */
export interface StartKey {
  seq: number;
  /** The event's timestamp in epoch milliseconds. */
  at: number;
  /** A span's start in nanoseconds (decimal), when the event is one: finer than `at`. */
  nanos: string | null;
  spanId: string | null;
  parentSpanId: string | null;
}

/** Ancestors followed at most: ids are the client's, cycles included. */
const MAX_DEPTH = 64;

/**
 * The seqs of a session's events in the order they started: by time (a span's start in
 * nanoseconds where it has one); in the same instant, a span before the spans it started (the
 * JavaScript SDK clocks spans in milliseconds: an agent, its first chat and the request around
 * them often share one); then by seq, the order they arrived in. Seqs stay the order of arrival,
 * what live clients resume from: this only reads them another way.
 */
export function startOrder(keys: StartKey[]): number[] {
  const parentOf = new Map<string, string | null>();
  for (const k of keys) if (k.spanId !== null && !parentOf.has(k.spanId)) parentOf.set(k.spanId, k.parentSpanId);
  const depths = new Map<string, number>();
  const depthOf = (spanId: string | null): number => {
    if (spanId === null) return 0;
    const known = depths.get(spanId);
    if (known !== undefined) return known;
    let depth = 0;
    const seen = new Set([spanId]);
    for (let id = parentOf.get(spanId) ?? null; id !== null && parentOf.has(id) && !seen.has(id) && depth < MAX_DEPTH; id = parentOf.get(id) ?? null) {
      seen.add(id);
      depth++;
    }
    depths.set(spanId, depth);
    return depth;
  };
  const nanos = (k: StartKey) => (k.nanos !== null && /^\d{1,20}$/.test(k.nanos) ? k.nanos.padStart(20, '0') : null);
  return keys
    .map((k) => ({ k, n: nanos(k), d: depthOf(k.spanId) }))
    .sort((a, b) => a.k.at - b.k.at || compareNanos(a.n, b.n) || a.d - b.d || a.k.seq - b.k.seq)
    .map((x) => x.k.seq);
}

/** Equal lengths (padded): text order is number order. Either missing: equal, the rest decides. */
function compareNanos(a: string | null, b: string | null): number {
  if (a === null || b === null || a === b) return 0;
  return a < b ? -1 : 1;
}
