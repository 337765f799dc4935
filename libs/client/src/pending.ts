/**
 * Actions the user took that the runtime has not acknowledged yet, persisted in the host's storage
 * so they survive a dropped socket and an app restart. Each carries a client_message_id: the
 * runtime ignores a second input with the same id, so sending an entry twice is harmless.
 */
import { readJson, storageKey, type HostStorage } from './host';

/** What a message sent while a turn runs does (the runtime's multitask_strategy): see `ChatConnection.send`. */
export type MultitaskStrategy = 'enqueue' | 'reject' | 'interrupt' | 'rollback';

export type PendingAction =
  | { kind: 'message'; client_message_id: string; text: string; context?: Record<string, unknown>; multitask_strategy?: MultitaskStrategy }
  | { kind: 'tool_response'; client_message_id: string; event_id: string; response: Record<string, unknown> };

export class PendingQueue {
  private readonly key: string;
  private items: PendingAction[];

  constructor(
    private readonly storage: HostStorage,
    ids: { appId: string; userId: string; chatId: string },
  ) {
    this.key = storageKey(ids.appId, ids.userId, ids.chatId, 'pending');
    const stored = readJson<unknown>(storage, this.key, []);
    this.items = Array.isArray(stored) ? (stored as PendingAction[]) : [];
  }

  list(): readonly PendingAction[] {
    return this.items;
  }

  /** Adds an action unless one with its client_message_id is already waiting. */
  add(a: PendingAction): boolean {
    if (this.items.some((i) => i.client_message_id === a.client_message_id)) return false;
    this.items = [...this.items, a];
    this.save();
    return true;
  }

  remove(match: (a: PendingAction) => boolean): PendingAction[] {
    const gone = this.items.filter(match);
    if (gone.length === 0) return gone;
    this.items = this.items.filter((a) => !match(a));
    this.save();
    return gone;
  }

  private save(): void {
    if (this.items.length === 0) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(this.items));
  }
}
