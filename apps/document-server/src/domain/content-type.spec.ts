import { sniffContentType } from './content-type';

describe('sniffContentType', () => {
  it.each([
    ['a PNG signature', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), 'image/png'],
    ['a PDF header', Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1'), 'application/pdf'],
    ['UTF-8 text', Buffer.from('héllo, wörld\n'), 'text/plain'],
    ['HTML (no signature: shown as text, never run)', Buffer.from('<html><script>alert(1)</script></html>'), 'text/plain'],
    ['binary noise', Buffer.from([0x00, 0x01, 0x02, 0xff, 0xfe]), 'application/octet-stream'],
    ['nothing', Buffer.alloc(0), 'application/octet-stream'],
  ])('%s', async (_name, bytes, type) => {
    expect(await sniffContentType(bytes)).toBe(type);
  });
});
