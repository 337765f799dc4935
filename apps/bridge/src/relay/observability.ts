import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { observability } from '@tessera/contracts';
import { SERVICE_KEY_HEADER, type Logger } from '@tessera/kit';

const FLUSH_MS = 200;
const MAX_BATCH = 500;
/** Events held while observability is out of reach; past this the oldest are dropped (and counted). */
const MAX_QUEUED = 10_000;

/**
 * Bridge sessions in observability: their lifecycle and agent events go to its `POST /events`
 * with the service key (source `bridge`, the session's app and user), batched. Its operators' stops
 * reach the bridge on `Channel.sessionControl` (server.ts).
 */
export class ObservabilityRelay {
  private queue: observability.IncomingEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  dropped = 0;

  constructor(
    private readonly url: string | null,
    private readonly serviceKey: string,
    private readonly logger: Logger,
  ) {}

  /** An event of a session, under the session's own app and user: only that app's operators see it. */
  send(owner: { appId: string; userId: string }, e: Omit<observability.IncomingEvent, 'source' | 'app_id' | 'user_id'>): void {
    if (!this.url) return;
    this.queue.push({ ...e, source: 'bridge', app_id: owner.appId, user_id: owner.userId });
    if (this.queue.length > MAX_QUEUED) {
      this.dropped += this.queue.length - MAX_QUEUED;
      this.queue.splice(0, this.queue.length - MAX_QUEUED);
    }
    if (this.queue.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight) await this.inflight;
    if (!this.url || this.queue.length === 0) return;
    const batch = this.queue.splice(0, MAX_BATCH);
    this.inflight = this.post(batch).catch((e: Error) => {
      // Put back at the front once; an observability outage must not grow memory without bound (MAX_QUEUED).
      this.queue.unshift(...batch);
      this.logger.warn('observability did not take bridge events', { events: batch.length, error: e.message });
      this.timer ??= setTimeout(() => void this.flush(), 2_000);
    });
    await this.inflight;
    this.inflight = null;
    if (this.queue.length) void this.flush();
  }

  private post(events: observability.IncomingEvent[]): Promise<void> {
    const u = new URL(`${this.url}/events`);
    const body = Buffer.from(JSON.stringify({ events }));
    const send = u.protocol === 'https:' ? httpsRequest : request;
    return new Promise((resolve, reject) => {
      const req = send(
        u,
        { method: 'POST', timeout: 5_000, headers: { 'content-type': 'application/json', 'content-length': String(body.length), [SERVICE_KEY_HEADER]: this.serviceKey } },
        (res) => {
          res.resume();
          if (res.statusCode === 200) resolve();
          else reject(new Error(`HTTP ${res.statusCode}`));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }
}
