import type { ServerResponse } from 'node:http';

/** How often an open event stream gets a comment line, so that proxies do not close it while it is quiet. */
export const SSE_KEEP_ALIVE_MS = 15_000;

/** The open streams of each interval, and that interval's one timer (unref'd, made with its first stream). */
const beats = new Map<number, { open: Set<ServerResponse>; timer: NodeJS.Timeout }>();

/**
 * Sends `res` an SSE comment line every `everyMs` until the returned function is called (before
 * the stream ends). One timer serves every stream of an interval: a timer per stream cost each
 * AG-UI run its set-up and tear-down.
 */
export function sseKeepAlive(res: ServerResponse, everyMs = SSE_KEEP_ALIVE_MS): () => void {
  let beat = beats.get(everyMs);
  if (!beat) {
    const open = new Set<ServerResponse>();
    const timer = setInterval(() => {
      for (const r of open) r.write(': keep-alive\n\n');
    }, everyMs).unref();
    beat = { open, timer };
    beats.set(everyMs, beat);
  }
  const { open } = beat;
  open.add(res);
  return () => void open.delete(res);
}
