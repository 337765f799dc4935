import { once } from 'node:events';
import type { Response } from 'express';
import type { FeedListener } from '../bus/feed';
import type { RuntimeServices } from '../services';
import { isAfter, type Positioned, type RunTranslator } from './translate';

const PAGE = 500;
/** A comment line this often keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;
/** Without a live signal the log is read again this often anyway (a lost pub/sub message costs this much delay, nothing else). */
const RECHECK_MS = 5_000;

/**
 * One run's AG-UI events on one HTTP response, read from the chat's timeline (the log is the only
 * source; the live feed only says "read again"): what the stream sends is the same on every
 * instance and every reconnect, and a reconnect sends exactly what follows its Last-Event-ID.
 */
export class AguiStream implements FeedListener {
  private closed = false;
  private dirty = false;
  private waiter: (() => void) | null = null;

  constructor(
    private readonly s: Pick<RuntimeServices, 'feed' | 'timeline' | 'logger'>,
    private readonly chatId: string,
    private readonly translator: RunTranslator,
    private readonly lastEvent: [number, number] | null,
    private readonly res: Response,
  ) {}

  onEvents(): void {
    this.kick();
  }

  onResync(): void {
    this.kick();
  }

  async run(): Promise<void> {
    const { res } = this;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.on('close', () => {
      this.closed = true;
      this.kick();
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const unsubscribe = await this.s.feed.subscribe(this.chatId, this);
    try {
      await this.send(this.translator.start());
      let cursor = this.translator.base;
      while (!this.closed && !this.translator.done) {
        this.dirty = false;
        const page = await this.s.timeline.after(this.chatId, cursor, PAGE);
        for (const e of page) {
          cursor = e.index;
          await this.send(this.translator.map(e));
          if (this.translator.done || this.closed) break;
        }
        if (page.length < PAGE && !this.translator.done) await this.wait();
      }
    } catch (err) {
      // The client reconnects with its Last-Event-ID and loses nothing.
      this.s.logger.error('agui stream failed', { chat_id: this.chatId, error: (err as Error).message.slice(0, 300) });
    } finally {
      clearInterval(heartbeat);
      await unsubscribe();
      res.end();
    }
  }

  private async send(events: Positioned[]): Promise<void> {
    for (const p of events) {
      if (this.closed) return;
      if (!isAfter(p.id, this.lastEvent)) continue;
      if (!this.res.write(`id: ${p.id}\ndata: ${JSON.stringify(p.event)}\n\n`)) await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }

  private kick(): void {
    this.dirty = true;
    this.waiter?.();
  }

  private async wait(): Promise<void> {
    if (this.dirty || this.closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, RECHECK_MS);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.waiter = null;
  }
}
