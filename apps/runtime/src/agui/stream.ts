import { once } from 'node:events';
import type { Response } from 'express';
import { closeSignal, sseKeepAlive } from '@tessera/kit';
import type { TimelineFollower } from '../bus/follow';
import type { RuntimeServices } from '../services';
import { isAfter, type Positioned, type RunTranslator } from './translate';

/**
 * One run's AG-UI events on one HTTP response, made of the chat's timeline in index order as the
 * follower (bus/follow.ts, subscribed by the route before the run's input) reads it: what the
 * stream sends is the same on every instance and every reconnect, and a reconnect sends exactly
 * what follows its Last-Event-ID.
 */
export class AguiStream {
  private readonly closed: AbortSignal;
  private corked = false;

  constructor(
    private readonly s: Pick<RuntimeServices, 'logger' | 'config'>,
    private readonly chatId: string,
    private readonly follower: TimelineFollower,
    private readonly translator: RunTranslator,
    private readonly lastEvent: [number, number] | null,
    private readonly res: Response,
    private readonly opts: { readLogFirst: boolean },
  ) {
    this.closed = closeSignal(res);
  }

  async run(): Promise<void> {
    const { res } = this;
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    const release = sseKeepAlive(res, this.s.config.SSE_KEEP_ALIVE_MS);
    try {
      // A new stream's headers leave with its RUN_STARTED, in one write. A reconnect's client holds
      // an event after RUN_STARTED (the first of every stream): it gets the headers alone, at once.
      if (this.lastEvent) res.flushHeaders();
      else await this.send(this.translator.start());
      if (!this.translator.done) {
        for await (const e of this.follower.follow(this.translator.base, this.closed, this.opts)) {
          await this.send(this.translator.map(e));
          if (this.translator.done || this.closed.aborted) break;
        }
      }
    } catch (err) {
      // The client reconnects with its Last-Event-ID and loses nothing.
      this.s.logger.error('agui stream failed', { chat_id: this.chatId, error: (err as Error).message.slice(0, 300) });
    } finally {
      release();
      res.end();
    }
  }

  /**
   * The AG-UI events made of one timeline event, in one write (a run's end is five events). The
   * writes of one turn of the event loop (the events of one live batch or log page) leave in one
   * system call: the response is corked at the first and uncorked once the batch is through, as the
   * chat socket does for its frames (ws/chat-delivery.ts).
   */
  private async send(events: Positioned[]): Promise<void> {
    let chunk = '';
    for (const p of events) if (isAfter(p.id, this.lastEvent)) chunk += `id: ${p.id}\ndata: ${JSON.stringify(p.event)}\n\n`;
    if (!chunk || this.closed.aborted) return;
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      setImmediate(() => {
        this.corked = false;
        this.res.uncork();
      });
    }
    if (!this.res.write(chunk)) await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
  }
}
