import type { Duplex } from 'node:stream';
import { CloseCode } from '@tessera/contracts';
import { closeFrame, FrameCursor, Opcode } from '../domain/ws-frames';

type Direction = 'down' | 'up';

interface Leg {
  src: Duplex;
  dst: Duplex;
  cursor: FrameCursor;
  /** Closing: forward up to the next frame boundary, then stop. */
  stopping: boolean;
  /** No longer forwarding; bytes from `src` are only followed (to see a close frame). */
  stopped: boolean;
}

/**
 * One relayed WebSocket: bytes flow client ⇄ service unchanged, so messages, pings and the
 * close handshake (with its code) pass end to end. The gateway only steps in to close it
 * itself (shutdown): at the next frame boundary of each direction it sends a close frame to
 * the client (1001) and a masked one to the service, then waits for the client's reply.
 */
export class Tunnel {
  private readonly legs: Record<Direction, Leg>;
  private closing: Promise<void> | null = null;
  private done = false;
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private closeCode: number = CloseCode.GoingAway;
  private closeReason = '';

  constructor(
    readonly client: Duplex,
    readonly upstream: Duplex,
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.legs = {
      down: { src: upstream, dst: client, cursor: new FrameCursor(), stopping: false, stopped: false },
      up: { src: client, dst: upstream, cursor: new FrameCursor(), stopping: false, stopped: false },
    };
    // While the gateway closes, the client's close frame ends the exchange.
    this.legs.up.cursor.onFrameEnd = (op) => {
      if (op === Opcode.Close && this.legs.up.stopped) client.end();
    };
    for (const dir of ['down', 'up'] as const) this.wire(dir);
    let open = 2;
    const onClose = () => {
      if (--open === 0) this.finish();
    };
    client.once('close', onClose);
    upstream.once('close', onClose);
  }

  /** Bytes that arrived with the upgrade, before the relay started. */
  start(clientHead: Buffer, upstreamHead: Buffer): void {
    if (upstreamHead.length) this.onData('down', upstreamHead);
    if (clientHead.length) this.onData('up', clientHead);
  }

  private wire(dir: Direction): void {
    const leg = this.legs[dir];
    leg.src.on('data', (chunk: Buffer) => this.onData(dir, chunk));
    // A half-close passes on; an error or a close cuts the other side too.
    leg.src.once('end', () => {
      if (!leg.dst.writableEnded) leg.dst.end();
    });
    leg.src.on('error', () => leg.dst.destroy());
    leg.src.once('close', () => {
      if (!leg.dst.destroyed) {
        leg.dst.end();
        setTimeout(() => leg.dst.destroy(), 1_000).unref();
      }
    });
  }

  private onData(dir: Direction, chunk: Buffer): void {
    const leg = this.legs[dir];
    if (leg.stopped) {
      leg.cursor.advance(chunk);
      return;
    }
    if (!leg.stopping) {
      leg.cursor.advance(chunk);
      this.write(leg, chunk);
      return;
    }
    const at = leg.cursor.advance(chunk, 0, true);
    if (at > 0) this.write(leg, at === chunk.length ? chunk : chunk.subarray(0, at));
    if (leg.cursor.atBoundary) {
      this.stop(dir);
      if (at < chunk.length) leg.cursor.advance(chunk, at);
    }
  }

  private write(leg: Leg, chunk: Buffer): void {
    if (leg.dst.destroyed || leg.dst.writableEnded) return;
    if (!leg.dst.write(chunk)) {
      leg.src.pause();
      leg.dst.once('drain', () => leg.src.resume());
    }
  }

  private stop(dir: Direction): void {
    const leg = this.legs[dir];
    if (leg.stopped) return;
    leg.stopped = true;
    if (leg.dst.destroyed || leg.dst.writableEnded) return;
    // To the client as a server frame; to the service as a (masked) client frame.
    leg.dst.write(closeFrame(this.closeCode, this.closeReason, dir === 'up'));
    leg.src.resume();
  }

  /** Close both sides cleanly with `code`; sockets that do not finish within `graceMs` are cut. */
  close(code: number = CloseCode.GoingAway, reason = 'gateway shutting down', graceMs = 2_000): Promise<void> {
    if (this.done) return Promise.resolve();
    this.closing ??= (async () => {
      this.closeCode = code;
      this.closeReason = reason;
      for (const dir of ['down', 'up'] as const) {
        const leg = this.legs[dir];
        leg.stopping = true;
        if (leg.cursor.atBoundary) this.stop(dir);
        // Keep reading so that the boundary (and the client's close frame) is seen.
        leg.src.resume();
      }
      const timer = setTimeout(() => {
        this.client.destroy();
        this.upstream.destroy();
      }, graceMs);
      timer.unref();
      await this.closed;
      clearTimeout(timer);
    })();
    return this.closing;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.resolveClosed();
  }
}

/** The open tunnels of one gateway, closed together on shutdown. */
export class TunnelSet {
  private readonly open = new Set<Tunnel>();
  private refusing = false;

  constructor(private readonly onCount?: (n: number) => void) {}

  get size(): number {
    return this.open.size;
  }

  /** False once closing: the caller refuses the upgrade. */
  add(t: Tunnel): boolean {
    if (this.refusing) {
      void t.close(CloseCode.GoingAway, 'gateway shutting down', 500);
      return false;
    }
    this.open.add(t);
    this.onCount?.(this.open.size);
    void t.closed.then(() => {
      this.open.delete(t);
      this.onCount?.(this.open.size);
    });
    return true;
  }

  async closeAll(code: number = CloseCode.GoingAway, reason = 'gateway shutting down', graceMs = 2_000): Promise<void> {
    this.refusing = true;
    await Promise.all([...this.open].map((t) => t.close(code, reason, graceMs)));
  }
}
