import type { ChatFeed } from '../bus/feed';
import type { NewEvent, StoredEvent, Timeline } from '../store/timeline';

export interface RecordDeps {
  timeline: Pick<Timeline, 'record'>;
  feed: Pick<ChatFeed, 'publish'>;
}

/**
 * Puts events on a chat's timeline, then publishes what was stored (events already stored under
 * their keys are neither stored nor published again). The order matters: stored first, so a
 * client that resumes from the log never misses an event a live socket saw. Resolves with the
 * stored events, once published. A turn's own events take the same path in batches (EventWriter),
 * and its end in one statement (TurnEnd).
 */
export async function record(d: RecordDeps, chatId: string, events: NewEvent[]): Promise<StoredEvent[]> {
  return d.timeline.record(chatId, events, d.feed);
}
