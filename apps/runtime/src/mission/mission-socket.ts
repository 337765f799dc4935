import type { Pool } from 'pg';
import type { RawData, WebSocket } from 'ws';
import { CloseCode, mission as m } from '@tessera/contracts';
import { HttpError, zodIssues, type SocketHandler } from '@tessera/kit';
import type { ChatRow, ChatStore } from '../store/chats';
import type { MissionRow, MissionStore } from '../store/missions';
import type { ChatInputs } from '../turns/chat-inputs';
import { ChatDelivery, type DeliveryDeps } from '../ws/chat-delivery';
import { conversationHistory } from './history';
import { TimelineMapper } from './wire';

export interface MissionSocketDeps extends DeliveryDeps {
  chats: ChatStore;
  chatInputs: ChatInputs;
  missions: MissionStore;
  db: { pool: Pool };
}

export const COMPLETION_MESSAGE = "Congratulations! You've completed the mission!";

/**
 * The chat's ordered, gap-free delivery (ChatDelivery: live events, catch-up from the log after a
 * gap or a Redis reconnect) with each timeline event translated to document 002's messages
 * instead of sent as is.
 */
class MissionDelivery extends ChatDelivery {
  constructor(
    d: DeliveryDeps,
    ws: WebSocket,
    chatId: string,
    private readonly onTimeline: (wire: string) => void,
  ) {
    super(d, ws, chatId);
  }

  override send(wire: string): void {
    this.onTimeline(wire);
  }
}

/**
 * One learner's socket on their mission conversation (document 002). What the learner sends goes
 * into the chat as any chat input does (queued, one turn at a time, on the turn workers); what
 * the chat's timeline says comes back through a TimelineMapper. The kit's SocketHub calls
 * `onMessage` one message at a time and `onClose` once.
 */
export class MissionSocket implements SocketHandler {
  private readonly delivery: MissionDelivery;
  private mapper = new TimelineMapper();
  private closing = false;
  /** Progress writes of checkpoint events, in order; a mission's close waits for them. */
  private recording: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly d: MissionSocketDeps,
    private readonly ws: WebSocket,
    private readonly mission: MissionRow,
    private readonly chat: ChatRow,
    private readonly completedCount: number,
  ) {
    this.delivery = new MissionDelivery(d, ws, chat.id, (wire) => this.onTimeline(wire));
  }

  /** `connected`, the history up to where the log is, then live events from there on. */
  async open(): Promise<void> {
    const state = await this.delivery.subscribe(async () => {
      const row = await this.d.chats.get(this.chat.id);
      if (!row) throw new Error('chat vanished while its socket opened');
      // The history is read from PostgreSQL: what the chat's tail holds goes there first.
      await this.d.timeline.tail?.flushChat(row.id);
      return { lastIndex: row.lastIndex, ...(await conversationHistory(this.d.db.pool, row.id, row.lastIndex)) };
    });
    this.mapper = new TimelineMapper({ inTurn: state.inTurn, completedCount: this.completedCount, pending: state.pending });
    this.out({ type: 'connected', message: `Connected to Mission Ally: ${this.mission.title}. Ready to start learning!` });
    this.out({ type: 'historical_messages', messages: state.messages });
    if (state.inTurn) this.out({ type: 'agent_processing_start' });
    this.delivery.startLive();
  }

  onClose(): Promise<void> {
    return this.delivery.close();
  }

  onRateLimited(): void {
    this.out({ type: 'error', message: 'too many messages; slow down and send again' });
  }

  onError(err: unknown): void {
    this.out({ type: 'error', message: err instanceof HttpError && err.status < 500 ? err.message : 'the message could not be processed; try again' });
  }

  async onMessage(raw: RawData, isBinary: boolean): Promise<void> {
    if (this.closing) return;
    if (isBinary) return this.out({ type: 'error', message: 'Invalid message format: binary frames are not supported; send JSON text' });
    let json: unknown;
    try {
      json = JSON.parse(raw.toString());
    } catch {
      return this.out({ type: 'error', message: 'Invalid message format: not valid JSON' });
    }
    const type = (json as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !(m.CLIENT_MESSAGE_TYPES as readonly string[]).includes(type))
      return this.out({ type: 'error', message: `Invalid message format: unknown type ${JSON.stringify(type ?? null)?.slice(0, 64)}; expected one of ${m.CLIENT_MESSAGE_TYPES.join(', ')}` });
    const parsed = m.ClientMessage.safeParse(json);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error).map((i) => (i.path ? `field '${i.path}' ${i.message}` : i.message));
      return this.out({ type: 'error', message: `Invalid message format: ${issues.join('; ')}` });
    }
    if (parsed.data.type === 'ping') return this.out({ type: 'pong' });
    await this.d.chatInputs.submitMessage(this.chat, parsed.data.message);
  }

  private onTimeline(wire: string): void {
    if (this.closing) return;
    const e = JSON.parse(wire) as { type: string; data: Record<string, unknown> };
    const before = this.mapper.completion;
    const messages = this.mapper.map(e);
    const done = this.mapper.completion;
    // Every socket that sees a completion records it (a second record is a no-op): the progress
    // is in PostgreSQL whichever instance holds the learner's socket.
    if (done && done !== before) {
      const { missionId, userId } = { missionId: this.mission.key, userId: this.chat.userId };
      this.recording = this.recording
        .then(() => this.d.missions.record(missionId, userId, done.completed_checkpoints))
        .catch((err: Error) => this.d.logger.warn('mission progress not recorded', { mission_id: missionId, error: err.message }));
    }
    for (const msg of messages) this.out(msg);
    if (e.type === 'chat.run_complete' && done?.mission_complete) this.finish();
  }

  /** The mission is complete: `session_closed` once its progress is stored, then close 1000. */
  private finish(): void {
    this.closing = true;
    void this.recording.then(() => {
      this.out({ type: 'session_closed', message: COMPLETION_MESSAGE });
      this.ws.close(CloseCode.Normal, 'mission completed');
    });
  }

  private out(msg: m.ServerMessage): void {
    this.d.hub.send(this.ws, JSON.stringify(msg));
  }
}
