import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpError, receiveMultipart } from '../src';
import { closeServer } from './support';

let server: Server;
let url: string;
/** What `undo` was handed, per request. */
const undone: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    receiveMultipart(req, {
      maxFileBytes: 10,
      maxFields: 3,
      onField: (name, value) => {
        if (name === 'refuse') throw new HttpError(403, 'FORBIDDEN', `refused: ${value}`);
      },
      onFile: async (stream, info, before) => {
        // "quick…": taken at once (stored elsewhere, say), so that a later refusal finds it made.
        if (info.filename.startsWith('quick')) return (stream.resume(), { name: info.filename, text: info.filename, fieldsBefore: [] });
        return { name: info.filename, text: Buffer.concat(await stream.toArray()).toString(), fieldsBefore: [...before.keys()] };
      },
      undo: async (f) => void undone.push(f.text),
    }).then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ fields: Object.fromEntries(body.fields), file: body.file })),
      (e: Error) => res.writeHead(e instanceof HttpError ? e.status : 500, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify({ message: e.message })),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => closeServer(server));

async function post(form: FormData | string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { method: 'POST', body: form, headers });
  return { status: r.status, json: (await r.json()) as { message?: string; fields?: Record<string, string[]>; file?: unknown } };
}

function form(entries: Array<[string, string | Blob, string?]>): FormData {
  const f = new FormData();
  for (const [k, v, name] of entries) {
    if (typeof v === 'string') f.append(k, v);
    else f.append(k, v, name);
  }
  return f;
}

describe('receiveMultipart', () => {
  it('gives every field in order (a repeated name keeps each value) and what onFile made of the file, with the fields before it', async () => {
    const r = await post(form([['tag', 'a'], ['tag', 'b'], ['file', new Blob(['hello']), 'résumé.txt'], ['after', 'x']]));
    expect(r).toEqual({ status: 200, json: { fields: { tag: ['a', 'b'], after: ['x'] }, file: { name: 'résumé.txt', text: 'hello', fieldsBefore: ['tag'] } } });
  });

  it('answers no file as null', async () => {
    expect((await post(form([['a', '1']]))).json.file).toBeNull();
  });

  it('refuses a file past the limit with a 413 while it streams', async () => {
    expect(await post(form([['file', new Blob(['x'.repeat(11)]), 'big.bin']]))).toEqual({ status: 413, json: { message: 'the file is larger than 10 bytes' } });
  });

  it('refuses a second file, a file under another name, and too many fields, each a 400 naming it', async () => {
    const two = await post(form([['file', new Blob(['1']), 'a'], ['file', new Blob(['2']), 'b']]));
    expect(two).toEqual({ status: 400, json: { message: 'invalid multipart body: too many files' } });
    const other = await post(form([['doc', new Blob(['1']), 'a']]));
    expect(other).toEqual({ status: 400, json: { message: 'invalid form: doc: only one file, in the field "file", is accepted' } });
    expect(await post(form([['a', '1'], ['b', '2'], ['c', '3'], ['d', '4']]))).toEqual({ status: 400, json: { message: 'invalid multipart body: too many fields' } });
  });

  it('hands what the file made to undo when a later part is refused, and answers that refusal', async () => {
    undone.length = 0;
    const r = await post(form([['file', new Blob(['kept?']), 'quick.txt'], ['refuse', 'late']]));
    expect(r).toEqual({ status: 403, json: { message: 'refused: late' } });
    expect(undone).toEqual(['quick.txt']);
  });

  it('is a 400 for a body that is not multipart or breaks off', async () => {
    const none = await post('x', { 'content-type': 'multipart/form-data' });
    expect(none.status).toBe(400);
    expect(none.json.message).toMatch(/^invalid multipart body: /);
    const cut = await post('--B\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nhal', { 'content-type': 'multipart/form-data; boundary=B' });
    expect(cut.status).toBe(400);
    expect(cut.json.message).toMatch(/^invalid multipart body: /);
  });
});
