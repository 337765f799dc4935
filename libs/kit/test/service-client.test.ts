import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { json } from 'node:stream/consumers';
import { z } from 'zod';
import { HttpError, ServiceClient, UnexpectedStatus, Unreachable } from '../src';
import { until } from '../src/testing';
import { closeServer } from './support';

const Thing = z.object({ id: z.string(), n: z.number() });

let server: Server;
let base: string;
/** What the stand-in service was sent last. */
let seen: { method?: string; url?: string; headers?: Record<string, unknown>; body?: string } = {};
/** Uploads the stand-in saw end early (the client aborted them). */
let aborted = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('aborted', () => aborted++);
    req.on('end', () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body };
      const json = (status: number, v: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/api/thing') return json(200, { id: 't1', n: 1 });
      if (req.url === '/api/echo') return json(201, { id: 'e', n: JSON.parse(body).n });
      if (req.url === '/api/wrong') return json(200, { id: 1 });
      if (req.url === '/api/refuse') return json(409, { error: { code: 'CONFLICT', message: 'no' } });
      if (req.url === '/api/big') return json(200, { id: 'x'.repeat(2_000), n: 1 });
      if (req.url === '/api/slow') return void setTimeout(() => json(200, { id: 's', n: 1 }), 2_000).unref();
      if (req.url === '/api/upload') return json(201, { id: 'u', n: body.length });
      if (req.url === '/api/download') return res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('y'.repeat(5_000));
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
});
afterAll(() => closeServer(server));

describe('ServiceClient', () => {
  const client = () => new ServiceClient(base, 'thing service', { timeoutMs: 300, maxReplyBytes: 1_000 });

  it('sends JSON with its headers and reads the reply with the contract', async () => {
    const c = client();
    expect(await c.json('GET', '/thing', Thing, { headers: { 'x-key': 'k', 'x-none': undefined } })).toEqual({ id: 't1', n: 1 });
    expect(seen.headers).toMatchObject({ 'x-key': 'k', accept: 'application/json' });
    expect(seen.headers).not.toHaveProperty('x-none');
    expect(await c.json('POST', '/echo', Thing, { body: { n: 7 }, expect: 201 })).toEqual({ id: 'e', n: 7 });
    expect(seen).toMatchObject({ method: 'POST', url: '/api/echo', body: '{"n":7}' });
    expect(seen.headers).toMatchObject({ 'content-type': 'application/json' });
    await c.close();
  });

  it('refuses a reply that breaks the contract with a 502 naming the service and the field', async () => {
    const c = client();
    const e = (await c.json('GET', '/wrong', Thing).catch((x: unknown) => x)) as HttpError;
    expect(e).toBeInstanceOf(HttpError);
    expect(e.status).toBe(502);
    expect(e.message).toBe('thing service sent a reply that does not match its contract');
    expect(JSON.stringify(e.details)).toContain('"path":"id"');
    await c.close();
  });

  it('hands another status to the caller with the reply', async () => {
    const c = client();
    const e = (await c.json('GET', '/refuse', Thing).catch((x: unknown) => x)) as UnexpectedStatus;
    expect(e).toBeInstanceOf(UnexpectedStatus);
    expect(e.reply).toMatchObject({ status: 409, body: { error: { code: 'CONFLICT', message: 'no' } } });
    await c.close();
  });

  it('is Unreachable, naming why, when the service is down, too slow, or its reply too long', async () => {
    const c = client();
    await expect(c.request('GET', '/slow')).rejects.toThrow(new Unreachable('thing service', 'no answer within 300 ms'));
    await expect(c.request('GET', '/big')).rejects.toThrow(Unreachable);
    await c.close();
    const down = new ServiceClient('http://127.0.0.1:1', 'down service');
    await expect(down.request('GET', '/')).rejects.toThrow('down service unreachable: ECONNREFUSED');
    await down.close();
  });

  it('streams: a body sent as it comes, a reply handed over unread past the JSON size limit, a failing body aborting the request with its own error', async () => {
    const c = client();
    async function* chunks() {
      for (let i = 0; i < 3; i++) yield Buffer.from('x'.repeat(100));
    }
    const up = await c.stream('POST', '/upload', { headers: { 'content-type': 'application/octet-stream' }, body: chunks() });
    expect([up.status, await json(up.body)]).toEqual([201, { id: 'u', n: 300 }]);
    expect(seen.headers).toMatchObject({ 'transfer-encoding': 'chunked' });
    const down = await c.stream('GET', '/download');
    let got = 0;
    for await (const b of down.body) got += (b as Buffer).length;
    expect([down.status, got]).toEqual([200, 5_000]); // past maxReplyBytes (1,000), which binds JSON calls only
    const before = aborted;
    async function* failing() {
      yield Buffer.from('partial');
      await new Promise((r) => setTimeout(r, 50));
      throw new Error('the client left');
    }
    await expect(c.stream('POST', '/upload', { body: failing() })).rejects.toThrow('the client left');
    await until(() => aborted > before, 2_000, 'the upload aborted at the service');
    await c.close();
  });
});
