import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@tessera/kit';
import { ObservabilityRelay } from './observability';

/** A stand-in observability: `POST /events` answers `statuses` in turn (then 200), and records each request. */
async function observability(statuses: number[]) {
  const got: Array<{ at: number; key: unknown; events: Array<{ event_id: string; app_id: string; source: string }> }> = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const { events } = JSON.parse(body) as { events: never[] };
      got.push({ at: Date.now(), key: req.headers['x-tessera-service-key'], events });
      waiters.splice(0).forEach((w) => w());
      const status = statuses.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(status === 200 ? { accepted: events.length, duplicates: 0, rejected: 0, results: events.map((_e, index) => ({ index, status: 'accepted' })) } : { error: { code: 'SERVICE_UNAVAILABLE', message: 'down' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const requests = async (n: number) => {
    while (got.length < n) await new Promise<void>((r) => waiters.push(r));
    return got;
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, requests, close: () => new Promise((r) => (server.closeAllConnections(), server.close(r))) };
}

const owner = { appId: 'app1', userId: 'u1' };
const event = (id: string) => ({ event_type: 'session_start', session_id: 's1', event_id: id });

describe('ObservabilityRelay', () => {
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });

  it("sends a session's events in one batch with the service key, under the session's app", async () => {
    const obs = await observability([]);
    const relay = new ObservabilityRelay(obs.url, 'the-key', createLogger('relay-spec', 'error'));
    open.push(obs, relay);
    relay.send(owner, event('e1'));
    relay.send(owner, event('e2'));
    const [first] = await obs.requests(1);
    expect(first.key).toBe('the-key');
    expect(first.events.map((e) => [e.event_id, e.app_id, e.source])).toEqual([
      ['e1', 'app1', 'bridge'],
      ['e2', 'app1', 'bridge'],
    ]);
  });

  it('puts back a batch observability did not take and sends it again after a pause, not at once', async () => {
    const obs = await observability([503]);
    const relay = new ObservabilityRelay(obs.url, 'the-key', createLogger('relay-spec', 'silent'));
    open.push(obs, relay);
    relay.send(owner, event('e1'));
    const [failed, retried] = await obs.requests(2);
    expect(retried.events.map((e) => e.event_id)).toEqual(['e1']);
    expect(retried.at - failed.at).toBeGreaterThanOrEqual(1_900);
  });
});
