import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { REQUEST_ID_HEADER, SERVICE_KEY_HEADER } from '@tessera/kit';

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Client headers the gateway sets itself, or that must never reach a service from a client. */
const REPLACED_REQUEST = new Set([
  'host',
  'expect',
  SERVICE_KEY_HEADER,
  REQUEST_ID_HEADER,
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'forwarded',
]);

function connectionTokens(h: string | string[] | undefined): Set<string> {
  if (!h) return new Set();
  return new Set((Array.isArray(h) ? h.join(',') : h).split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}

export interface ForwardContext {
  requestId: string;
  clientIp: string;
  /** Number of proxies in front of the gateway whose X-Forwarded-* headers are trusted. */
  trustHops: number;
}

/**
 * Request headers for the service: the client's, minus hop-by-hop headers and the service key,
 * plus the request id and X-Forwarded-For/Proto/Host. Authorization passes unchanged. Host is
 * the instance's, set when one is chosen.
 */
export function forwardRequestHeaders(req: IncomingMessage, ctx: ForwardContext, upgrade = false): OutgoingHttpHeaders {
  const h = req.headers;
  const dropped = connectionTokens(h.connection);
  const out: OutgoingHttpHeaders = {};
  for (const key in h) {
    if (HOP_BY_HOP.has(key) || REPLACED_REQUEST.has(key) || dropped.has(key)) continue;
    out[key] = h[key];
  }
  const encrypted = Boolean((req.socket as TLSSocket).encrypted);
  const trusted = ctx.trustHops > 0;
  const priorFor = trusted ? header(h, 'x-forwarded-for') : undefined;
  out['x-forwarded-for'] = priorFor ? `${priorFor}, ${ctx.clientIp}` : ctx.clientIp;
  out['x-forwarded-proto'] = (trusted && header(h, 'x-forwarded-proto')) || (encrypted ? 'https' : 'http');
  out['x-forwarded-host'] = (trusted && header(h, 'x-forwarded-host')) || h.host || '';
  out[REQUEST_ID_HEADER] = ctx.requestId;
  if (upgrade) {
    out.connection = 'Upgrade';
    out.upgrade = 'websocket';
  }
  return out;
}

/** Response headers for the client: the service's, minus hop-by-hop and CORS (the gateway owns CORS). */
export function forwardResponseHeaders(res: IncomingMessage): OutgoingHttpHeaders {
  const h = res.headers;
  const dropped = connectionTokens(h.connection);
  const out: OutgoingHttpHeaders = {};
  for (const key in h) {
    if (HOP_BY_HOP.has(key) || dropped.has(key) || key.startsWith('access-control-')) continue;
    out[key] = h[key];
  }
  return out;
}

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The client's address: the TCP peer when the gateway is the edge, otherwise the address the
 * trusted proxies recorded (`trustHops` entries from the right of X-Forwarded-For).
 */
export function clientIpOf(req: IncomingMessage, trustHops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustHops <= 0) return peer;
  const list = (header(req.headers, 'x-forwarded-for') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return list[list.length - trustHops] ?? list[0] ?? peer;
}
