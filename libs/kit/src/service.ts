import { createServer, IncomingMessage, ServerResponse, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Logger } from './logger';
import type { RunningProcess } from './run-main';
import type { ServiceApp } from './service-app';
import { GracefulShutdown } from './shutdown';

/**
 * Node's HTTP server options for an express app: every request and response is made with the
 * app's own prototypes from the start. Express gives each request and response its prototypes
 * with `Object.setPrototypeOf` as it comes in; on an object node made, that changes its hidden
 * class on every request, and node's own HTTP code (writeHead, setHeader, the parser's callbacks)
 * then runs on slow paths. On an object that already has them, it changes nothing.
 * `tools/bench/http-stack.ts`: an express route 136 → 47 µs of CPU a request (node's `http`
 * alone: 29), a service built as every Tessera service is 195 → 95.
 *
 * The objects are made by subclasses of node's classes, whose prototypes become the app's (each
 * one's own prototype is what the app's was). A subclass's objects have the shape V8 learned for
 * node's. Calling node's constructor on an object a plain function made (`ServerResponse.apply(this)`,
 * as this did before) left a response no room for node's 42 fields: V8 kept its properties in a
 * dictionary, about 3 KB a response, and every read of one in node's HTTP code was a lookup (a V8
 * heap snapshot of an API instance streaming 250 AG-UI runs; `%HasFastProperties`).
 */
export function expressServerOptions(app: Pick<Express, 'request' | 'response'>): ServerOptions {
  let made = madeFor.get(app);
  if (!made) {
    const AppRequest = class extends IncomingMessage {};
    const AppResponse = class extends ServerResponse {};
    Object.setPrototypeOf(AppRequest.prototype, app.request);
    Object.setPrototypeOf(AppResponse.prototype, app.response);
    app.request = AppRequest.prototype as typeof app.request;
    app.response = AppResponse.prototype as typeof app.response;
    made = { IncomingMessage: AppRequest, ServerResponse: AppResponse as typeof ServerResponse };
    madeFor.set(app, made);
  }
  return made;
}

const madeFor = new WeakMap<object, ServerOptions>();

/** Start an HTTP server for an express app; resolves once it listens (port 0 picks a free one). */
export function listen(app: Express, port: number, host = '127.0.0.1'): Promise<{ server: Server; port: number; url: string }> {
  const server = createServer(expressServerOptions(app), app);
  // Slow-client and keep-alive limits; a proxy in front keeps its own idle timeout below these.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const p = (server.address() as AddressInfo).port;
      resolve({ server, port: p, url: `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${p}` });
    });
  });
}

/** A service's HTTP process once it serves: its services, where it listens, the shutdown server.ts declared. */
export interface RunningService<S> extends RunningProcess {
  s: S;
  url: string;
  port: number;
}

/** What `serveApp` hands a service's server.ts: the app serving, and a shutdown with nothing declared yet. */
export interface ServedApp {
  /** server.ts declares the order on it (usually `addServer('http', server)`, what the service runs, then `services.close()`). */
  shutdown: GracefulShutdown;
  http: ServiceApp;
  server: Server;
  port: number;
  url: string;
}

/**
 * The skeleton's serving step, the same in every server.ts: the app built from the services with
 * the shutdown's flag (`/ready` answers 503 while it drains), listening on the config's PORT and
 * HOST, its sockets attached. The order of the shutdown stays server.ts's to declare.
 */
export async function serveApp<S>(
  config: { PORT: number; HOST: string; SHUTDOWN_TIMEOUT_MS: number },
  logger: Logger,
  s: S,
  createApp: (s: S, opts: { isShuttingDown: () => boolean }) => ServiceApp,
): Promise<ServedApp> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const http = createApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port, url } = await listen(http.app, config.PORT, config.HOST);
  http.attach(server);
  return { shutdown, http, server, port, url };
}
