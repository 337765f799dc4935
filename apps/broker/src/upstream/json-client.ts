import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface JsonReply {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, or undefined when the body is not JSON. */
  body: unknown;
  text: string;
}

/** A network failure or a timeout (never an HTTP status): the other side is unreachable. */
export class Unreachable extends Error {
  constructor(
    readonly target: string,
    readonly reason: string,
  ) {
    super(`${target} unreachable: ${reason}`);
    this.name = 'Unreachable';
  }
}

/**
 * JSON over HTTP to one service, on a pool of keep-alive connections that `close()` releases.
 * Each call has a time budget covering connect, headers and body.
 */
export class JsonClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(
    baseUrl: string,
    private readonly name: string,
    private readonly maxBodyBytes = 4 * 1024 * 1024,
  ) {
    this.base = new URL(baseUrl);
    this.transport = this.base.protocol === 'https:' ? https : http;
    const opts = { keepAlive: true, maxSockets: 256, timeout: 30_000, scheduling: 'lifo' as const };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(opts) : new http.Agent(opts);
  }

  request(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string | undefined>; timeoutMs: number }): Promise<JsonReply> {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = v;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const basePath = this.base.pathname.replace(/\/+$/, '');
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        { protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port, method, path: basePath + path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > this.maxBodyBytes) req.destroy(new Error('reply too large'));
            else chunks.push(c);
          });
          res.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              body = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
          });
          res.on('error', (e) => fail(e));
        },
      );
      let failed = false;
      const fail = (e: NodeJS.ErrnoException) => {
        if (failed) return;
        failed = true;
        clearTimeout(timer);
        reject(new Unreachable(this.name, e.code ?? e.message));
      };
      const timer = setTimeout(() => {
        const e = Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'TIMEOUT' });
        fail(e);
        req.destroy(e);
      }, opts.timeoutMs);
      req.on('error', fail);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
