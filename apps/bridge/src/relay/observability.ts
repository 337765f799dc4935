import { observability } from '@tessera/contracts';
import { SERVICE_KEY_HEADER, ServiceClient, type Logger } from '@tessera/kit';

const FLUSH_MS = 200;
const MAX_BATCH = 500;
/** A batch observability did not take is sent again after this long. */
const RETRY_MS = 2_000;
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
  private closed = false;
  private readonly http: ServiceClient | null;

  constructor(
    private readonly url: string | null,
    private readonly serviceKey: string,
    private readonly logger: Logger,
  ) {
    this.http = url ? new ServiceClient(url, 'observability', { timeoutMs: 5_000 }) : null;
  }

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
    let taken = true;
    this.inflight = this.post(batch).catch((e: Error) => {
      taken = false;
      // Put back at the front once; an observability outage must not grow memory without bound (MAX_QUEUED).
      this.queue.unshift(...batch);
      this.logger.warn('observability did not take bridge events', { events: batch.length, error: e.message });
      if (!this.closed) this.timer ??= setTimeout(() => void this.flush(), RETRY_MS);
    });
    await this.inflight;
    this.inflight = null;
    // The rest goes now only if this batch went; after a failure the retry waits RETRY_MS.
    if (taken && this.queue.length) void this.flush();
  }

  private async post(events: observability.IncomingEvent[]): Promise<void> {
    await this.http?.json('POST', '/events', observability.IngestReply, { body: { events }, headers: { [SERVICE_KEY_HEADER]: this.serviceKey } });
  }

  /** Sends what is queued (once: what observability does not take now is dropped), then releases the connections. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    await this.http?.close();
  }
}
