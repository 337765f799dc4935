import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { createLogger, SocketHub, SocketRefusal } from '../src';
import { closeServer } from './support';

/** A refusal closes with its own code when it names one (the bridge's 4401/4404), 1008 otherwise. */
describe('SocketRefusal close codes', () => {
  it('closes with 1008 by default and with the code given', async () => {
    const hub = new SocketHub({ logger: createLogger('refusal-test', 'silent') });
    const server = createServer();
    hub.attach(server, [
      { path: /^\/default$/, open: () => Promise.reject(new SocketRefusal('no')) },
      { path: /^\/coded$/, open: () => Promise.reject(new SocketRefusal('unknown session', 4404)) },
    ]);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const closeOf = (path: string) =>
      new Promise<[number, string]>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
        ws.on('error', reject);
        ws.on('close', (code, reason) => resolve([code, reason.toString()]));
      });
    try {
      expect(await closeOf('/default')).toEqual([1008, 'no']);
      expect(await closeOf('/coded')).toEqual([4404, 'unknown session']);
    } finally {
      await hub.close();
      await closeServer(server);
    }
  });
});
