import { randomBytes } from 'node:crypto';

/**
 * The gateway relays WebSocket bytes without decoding messages (no unmasking, no re-framing, no
 * buffering). To close a relayed socket cleanly it still needs to know where one frame ends and
 * the next begins: a close frame may only be inserted between frames. FrameCursor follows the
 * frame headers of a byte stream (RFC 6455 §5.2) and skips over payloads without reading them.
 */
export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

export class FrameCursor {
  private readonly header = Buffer.alloc(14);
  private headerLen = 0;
  private headerNeed = 2;
  private payloadLeft = 0;
  private opcode = 0;
  /** Called when a frame has passed completely, with its opcode. */
  onFrameEnd?: (opcode: number) => void;

  /** True between frames: a frame can be inserted here. */
  get atBoundary(): boolean {
    return this.headerLen === 0 && this.payloadLeft === 0;
  }

  /**
   * Follow `chunk` from `start`. With `stopAtBoundary`, stop at the first frame boundary (which
   * may be `start` itself). Returns the offset reached.
   */
  advance(chunk: Buffer, start = 0, stopAtBoundary = false): number {
    let i = start;
    const n = chunk.length;
    while (i < n) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, n - i);
        this.payloadLeft -= take;
        i += take;
        if (this.payloadLeft === 0) this.onFrameEnd?.(this.opcode);
        continue;
      }
      if (stopAtBoundary && this.headerLen === 0) return i;
      this.header[this.headerLen++] = chunk[i++];
      if (this.headerLen === 2) {
        const len7 = this.header[1] & 0x7f;
        this.headerNeed = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.header[1] & 0x80 ? 4 : 0);
      }
      if (this.headerLen >= 2 && this.headerLen === this.headerNeed) this.headerDone();
    }
    return i;
  }

  private headerDone(): void {
    const len7 = this.header[1] & 0x7f;
    this.payloadLeft = len7 === 126 ? this.header.readUInt16BE(2) : len7 === 127 ? Number(this.header.readBigUInt64BE(2)) : len7;
    this.opcode = this.header[0] & 0x0f;
    this.headerLen = 0;
    this.headerNeed = 2;
    if (this.payloadLeft === 0) this.onFrameEnd?.(this.opcode);
  }
}

/** A close frame with a status code and reason; `masked` for frames a client sends (to a service). */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 123);
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  const head = Buffer.from([0x80 | Opcode.Close, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  return Buffer.concat([head, key, payload]);
}
