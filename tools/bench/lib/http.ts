import http from 'node:http';
import { call } from '../../../libs/kit/src/testing';

/** A keep-alive agent for the benchmarks' HTTP loads (destroy it at the end). */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP call through `agent` with a JSON body and reply (the reply text when it is not JSON). */
export async function httpCall(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const u = new URL(url);
  const r = await call(u.origin, method, u.pathname + u.search, { body, headers, agent, timeoutMs: 30_000 });
  return { status: r.status, json: r.json === undefined ? r.text : r.json };
}

/** Run `op` for 0..n-1 with at most `concurrency` in flight; results in order. */
export async function pooled<T>(n: number, concurrency: number, op: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await op(i);
      }
    }),
  );
  return out;
}
