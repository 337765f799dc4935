import { closeFrame, FrameCursor, Opcode } from './ws-frames';

/** A frame as a server (unmasked) or client (masked) would send it. */
function frame(opcode: number, payload: Buffer, masked = false): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  if (len >= 126 && len < 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[0] = 0x80 | opcode;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (masked) head[1] |= 0x80;
  return Buffer.concat([head, masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0), payload]);
}

describe('FrameCursor', () => {
  const frames = [
    frame(Opcode.Text, Buffer.from('hi')),
    frame(Opcode.Binary, Buffer.alloc(300, 1), true),
    frame(Opcode.Ping, Buffer.alloc(0)),
    frame(Opcode.Text, Buffer.alloc(70_000, 2)),
    frame(Opcode.Close, Buffer.from([0x03, 0xe8]), true),
  ];
  const stream = Buffer.concat(frames);
  const boundaries = frames.reduce<number[]>((acc, f) => [...acc, (acc.at(-1) ?? 0) + f.length], []);

  it('follows frames of every length form, in chunks of any size', () => {
    for (const size of [1, 2, 3, 7, 100, 4096, stream.length]) {
      const c = new FrameCursor();
      const ended: number[] = [];
      c.onFrameEnd = (op) => ended.push(op);
      const seen: number[] = [];
      for (let off = 0; off < stream.length; off += size) {
        const chunk = stream.subarray(off, off + size);
        c.advance(chunk);
        if (c.atBoundary) seen.push(off + chunk.length);
      }
      expect(ended).toEqual([Opcode.Text, Opcode.Binary, Opcode.Ping, Opcode.Text, Opcode.Close]);
      expect(c.atBoundary).toBe(true);
      for (const s of seen) expect(boundaries).toContain(s);
    }
  });

  it('stops at the next boundary when asked', () => {
    const c = new FrameCursor();
    // Start inside the 300-byte frame: the first stop is where it ends.
    c.advance(stream.subarray(0, 10));
    const rest = stream.subarray(10);
    const at = c.advance(rest, 0, true);
    expect(10 + at).toBe(boundaries[1]);
    expect(c.atBoundary).toBe(true);
    // At a boundary already: stops at once.
    expect(c.advance(rest, at, true)).toBe(at);
  });

  it('builds close frames a peer can read', () => {
    const server = closeFrame(1001, 'bye', false);
    expect([...server.subarray(0, 2)]).toEqual([0x88, 5]);
    expect(server.readUInt16BE(2)).toBe(1001);
    expect(server.subarray(4).toString()).toBe('bye');
    const client = closeFrame(1001, 'bye', true);
    expect(client[1]).toBe(0x80 | 5);
    const key = client.subarray(2, 6);
    const payload = Buffer.from(client.subarray(6).map((b, i) => b ^ key[i & 3]));
    expect(payload.readUInt16BE(0)).toBe(1001);
    expect(payload.subarray(2).toString()).toBe('bye');
  });
});
