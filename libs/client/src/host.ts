/**
 * What a host (browser, React Native, Node) gives the core (document 003 §7). The core touches
 * no DOM or Node API: sockets, fetch, storage and tokens all come from here or from the globals
 * every one of those hosts has.
 */

/** Synchronous key-value storage: localStorage, MMKV, or a Map in Node. */
export interface HostStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The part of the WHATWG WebSocket the core uses; `ws`, browsers and React Native all have it. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = new (url: string) => SocketLike;

export interface FetchResponseLike {
  readonly status: number;
  readonly ok: boolean;
  text(): Promise<string>;
}
/** The part of the WHATWG FormData the core uses (browsers, React Native, Node 18+). */
export interface FormDataLike {
  append(name: string, value: unknown, filename?: string): void;
}
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string | FormDataLike }) => Promise<FetchResponseLike>;

export interface Host {
  storage: HostStorage;
  getAccessToken(): string | null | Promise<string | null>;
  /** e.g. https://api.example.com (no trailing slash needed) */
  httpBaseUrl: string;
  /** e.g. wss://api.example.com */
  wsBaseUrl: string;
  WebSocket?: SocketFactory;
  fetch?: FetchLike;
}

export function socketFactory(host: Host): SocketFactory {
  const ctor = host.WebSocket ?? (globalThis as { WebSocket?: SocketFactory }).WebSocket;
  if (!ctor) throw new Error('no WebSocket: this host has no global WebSocket, so pass one as host.WebSocket');
  return ctor;
}

export function fetchFn(host: Host): FetchLike {
  if (host.fetch) return host.fetch;
  const f = (globalThis as { fetch?: FetchLike }).fetch;
  if (!f) throw new Error('no fetch: this host has no global fetch, so pass one as host.fetch');
  // Unbound global fetch throws "Illegal invocation" in browsers.
  return (url, init) => f.call(globalThis, url, init);
}

export function formData(): FormDataLike {
  const ctor = (globalThis as { FormData?: new () => FormDataLike }).FormData;
  if (!ctor) throw new Error('no FormData: this host has no global FormData, so it cannot upload');
  return new ctor();
}

export function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Every key the core writes is scoped by app + user (+ chat): 003 §1's tenant-safe keying. */
export function storageKey(appId: string, userId: string, ...rest: string[]): string {
  return ['tessera', 'v1', appId, userId, ...rest].map(encodeURIComponent).join(':');
}

export function readJson<T>(storage: HostStorage, key: string, fallback: T): T {
  const raw = storage.getItem(key);
  if (raw === null) return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch {
    // A corrupt entry (another app version, a half write) must not stop the chat from loading.
    storage.removeItem(key);
    return fallback;
  }
}

/** A random id without Node's crypto: React Native has no crypto.randomUUID. */
export function newId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  let s = '';
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
}
export const DEFAULT_BACKOFF: Backoff = { initialMs: 250, maxMs: 15_000 };

/** Exponential backoff with "equal jitter": half fixed, half random, so clients do not reconnect in lockstep. */
export function backoffDelay(attempt: number, b: Backoff, random: () => number = Math.random): number {
  const cap = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 30));
  return cap / 2 + random() * (cap / 2);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
