/**
 * A host made of Node parts alone (node:http, node:crypto, `ws`), for tests whose environment is
 * jsdom: there the globals fetch, TextEncoder and crypto.subtle (which jose needs) are absent.
 */
import { Buffer } from 'node:buffer';
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import WebSocket from 'ws';
import type { FetchLike, Host, HostStorage, SocketFactory } from '../src';
import { JWT_SECRET } from './runtime-process';

/** fetch over node:http: JSON and empty bodies, which is all the JSON routes need. */
export const nodeFetch: FetchLike = (url, init) =>
  new Promise((resolve, reject) => {
    if (init.body !== undefined && typeof init.body !== 'string') return reject(new Error('nodeFetch sends JSON bodies only'));
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const headers = body ? { ...init.headers, 'content-length': String(body.length) } : init.headers;
    const req = request(url, { method: init.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: async () => text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });

/** An HS256 token like the runtime's tests sign, made with node:crypto. */
export function signToken(sub: string, apps = ['app1']): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, apps, iat: now, exp: now + 3600 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}

export function mapStorage(): HostStorage {
  const map = new Map<string, string>();
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

export function nodeHost(rt: { url: string; wsUrl: string }, user: string, storage: HostStorage = mapStorage()): Host {
  return {
    storage,
    getAccessToken: () => signToken(user),
    httpBaseUrl: rt.url,
    wsBaseUrl: rt.wsUrl,
    WebSocket: WebSocket as unknown as SocketFactory,
    fetch: nodeFetch,
  };
}
