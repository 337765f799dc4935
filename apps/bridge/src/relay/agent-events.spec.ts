import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@tessera/kit';
import { AgentEventStream, type AgentEvent } from './agent-events';

/** A real SSE server on port 0: each connection to /event is handed to `onStream` in turn. */
async function sseServer(onStream: (res: ServerResponse, n: number) => void): Promise<{ server: Server; port: number; auths: string[] }> {
  const auths: string[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    auths.push(req.headers.authorization ?? '');
    if (req.url !== '/event') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    onStream(res, n++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, auths };
}

function collect(port: number): { events: AgentEvent[]; stream: AgentEventStream; until: (count: number) => Promise<AgentEvent[]> } {
  const events: AgentEvent[] = [];
  const waiters: Array<() => void> = [];
  const stream = new AgentEventStream({ host: '127.0.0.1', port, auth: 'opencode:pw' }, (e) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  }, createLogger('agent-events-spec', 'error')).open();
  const until = async (count: number) => {
    while (events.length < count) await new Promise<void>((r) => waiters.push(r));
    return events;
  };
  return { events, stream, until };
}

describe('AgentEventStream', () => {
  let server: Server | undefined;
  let stream: AgentEventStream | undefined;
  afterEach(async () => {
    stream?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  it('hands on each JSON event with a type, across split chunks, CRLF lines and multi-line data, and skips the rest', async () => {
    const s = await sseServer((res) => {
      res.write('data: {"type":"a","id":"1"}\n\n: a comment\n\nda');
      setImmediate(() => {
        res.write('ta: {"type":"b",\r\ndata: "properties":{"x":1}}\r\n\r\ndata: not json\n\ndata: {"no":"type"}\n\n');
        res.write('event: other\nid: 7\ndata: {"type":"c"}\n\n');
      });
    });
    server = s.server;
    const c = collect(s.port);
    stream = c.stream;
    expect(await c.until(3)).toEqual([{ type: 'a', id: '1' }, { type: 'b', properties: { x: 1 } }, { type: 'c' }]);
    expect(s.auths[0]).toBe(`Basic ${Buffer.from('opencode:pw').toString('base64')}`);
  });

  it('reopens a stream that ended, and one that sent an event past the bound, and goes on', async () => {
    const s = await sseServer((res, n) => {
      if (n === 0) return res.end('data: {"type":"first"}\n\n');
      if (n === 1) return void res.write(`data: ${'x'.repeat(5 * 1024 * 1024)}`);
      res.write('data: {"type":"after"}\n\n');
    });
    server = s.server;
    const c = collect(s.port);
    stream = c.stream;
    expect((await c.until(2)).map((e) => e.type)).toEqual(['first', 'after']);
    expect(s.auths).toHaveLength(3);
  });
});
