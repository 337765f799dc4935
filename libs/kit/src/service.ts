import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

/** Start an HTTP server for an express app; resolves once it listens (port 0 picks a free one). */
export function listen(app: Express, port: number, host = '127.0.0.1'): Promise<{ server: Server; port: number; url: string }> {
  const server = createServer(app);
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
