import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { BadGateway, refuseUpgrade, toErrorResponse, Unavailable } from '@tessera/kit';
import { connectTimeout, isUnreachable, transportOf, type Instance, type ServerPool } from './upstreams';
import { Tunnel } from './ws-tunnel';

function writeRawResponse(socket: Duplex, status: number, headers: OutgoingHttpHeaders, body: Buffer): void {
  if (socket.destroyed) return;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries({ ...headers, 'content-length': body.length, connection: 'close' })) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  }
  socket.end(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), body]));
}

export interface UpgradeOptions {
  upstream: ServerPool;
  path: string;
  /** Request headers for the service; `host` is set per instance. */
  headers: OutgoingHttpHeaders;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** The relay is open (the service accepted the upgrade). */
  onTunnel: (t: Tunnel) => void;
  /** Status of the handshake as the client saw it. */
  onDone?: (status: number, ms: number) => void;
}

/**
 * Pass a WebSocket upgrade to the service. When the service switches protocols, its 101 goes to
 * the client and the two sockets are joined byte for byte; a refusal (4xx/5xx before the
 * upgrade) is passed back as is; a service none of whose instances can be reached is a 503/502
 * in the error shape. An instance that refuses the connection is skipped for the next one.
 */
export function forwardUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, opts: UpgradeOptions): void {
  const instances = opts.upstream.order();
  const started = performance.now();
  const next = (i: number): boolean => {
    if (i >= instances.length) return false;
    upgradeTo(instances[i], client, head, opts, started, () => next(i + 1));
    return true;
  };
  next(0);
}

function upgradeTo(inst: Instance, client: Duplex, head: Buffer, opts: UpgradeOptions, started: number, tryNext: () => boolean): void {
  const up = opts.upstream;
  const base = inst.base;
  if (client.destroyed) return;
  let finished = false;
  const done = (status: number) => {
    if (finished) return false;
    finished = true;
    clearTimeout(timer);
    opts.onDone?.(status, performance.now() - started);
    return true;
  };

  const upReq = transportOf(inst).request({
    protocol: base.protocol,
    hostname: base.hostname,
    port: base.port,
    method: 'GET',
    path: opts.path,
    headers: { ...opts.headers, host: inst.host },
    // Upgraded sockets leave the pool anyway; a fresh connection keeps the pool's sockets for HTTP.
    agent: false,
  });
  connectTimeout(upReq, opts.connectTimeoutMs);
  const timer = setTimeout(() => upReq.destroy(Object.assign(new Error('response timeout'), { code: 'RESPONSE_TIMEOUT' })), opts.responseTimeoutMs);

  // The client left during the handshake.
  const onClientGone = () => upReq.destroy();
  client.once('close', onClientGone);

  upReq.on('upgrade', (upRes, upSocket, upHead) => {
    client.off('close', onClientGone);
    if (!done(101) || client.destroyed) {
      upSocket.destroy();
      return;
    }
    let response = `HTTP/1.1 101 ${upRes.statusMessage || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < upRes.rawHeaders.length; i += 2) response += `${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}\r\n`;
    client.write(response + '\r\n');
    upSocket.setNoDelay(true);
    upSocket.setTimeout(0);
    const tunnel = new Tunnel(client, upSocket);
    tunnel.start(head, upHead);
    opts.onTunnel(tunnel);
  });

  upReq.on('response', (upRes) => {
    // The service refused the upgrade with an ordinary response: pass it on.
    const chunks: Buffer[] = [];
    let size = 0;
    upRes.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    upRes.on('end', () => {
      client.off('close', onClientGone);
      if (!done(upRes.statusCode ?? 502)) return;
      const headers: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(upRes.headers)) {
        if (!['connection', 'transfer-encoding', 'content-length', 'keep-alive'].includes(k)) headers[k] = v;
      }
      writeRawResponse(client, upRes.statusCode ?? 502, headers, Buffer.concat(chunks));
    });
    upRes.on('error', () => client.destroy());
  });

  upReq.on('error', (err: NodeJS.ErrnoException) => {
    client.off('close', onClientGone);
    if (finished) return;
    if (isUnreachable(err)) {
      up.markDown(inst);
      finished = true;
      clearTimeout(timer);
      if (tryNext()) return;
      finished = false;
    }
    let e: unknown;
    if (err.code === 'RESPONSE_TIMEOUT') e = new Unavailable(`${up.name} did not answer the upgrade within ${opts.responseTimeoutMs} ms`, { service: up.name });
    else if (isUnreachable(err)) e = new Unavailable(`${up.name} is unavailable`, { service: up.name, reason: err.code });
    else e = new BadGateway(`${up.name} failed to answer`, { service: up.name, reason: err.code ?? err.message });
    done(toErrorResponse(e).status);
    refuseUpgrade(client, e);
  });

  upReq.end();
}
