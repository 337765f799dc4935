import http from 'node:http';

/** A keep-alive agent for the benchmarks' HTTP loads (destroy it at the end). */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One HTTP call with a JSON body and reply (the reply text when it is not JSON). */
export function httpCall(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const u = new URL(url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((res, rej) => {
    const req = http.request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        agent,
        headers: { ...(payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }), ...headers },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          res({ status: r.statusCode ?? 0, json });
        });
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', rej);
    req.end(payload);
  });
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
