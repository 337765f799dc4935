/** Typed runtime → client messages (generated from libs/contracts/src/runtime/ws.ts) and what a connection emits. */
import type * as z from 'zod/mini';
import type { PendingAction } from './pending';
import type { ControlData, TimelineData } from './wire.gen';

export type TimelineType = keyof typeof TimelineData;
export type TimelineDataOf<T extends TimelineType> = z.infer<(typeof TimelineData)[T]>;
export type ControlType = keyof typeof ControlData;
export type ControlDataOf<T extends ControlType> = z.infer<(typeof ControlData)[T]>;

/** An event of the chat's timeline: it has an index and is replayed by `client.resume`. */
export type TimelineEvent = { [T in TimelineType]: { type: T; index: number; data: TimelineDataOf<T>; timestamp: string } }[TimelineType];
/** A message outside the timeline (meta, acks, resume boundary, errors answering a message). */
export type ControlEvent = { [T in ControlType]: { type: T; data: ControlDataOf<T>; timestamp: string } }[ControlType];

export type ConnectionStatus = 'idle' | 'connecting' | 'resuming' | 'live' | 'waiting' | 'offline' | 'background' | 'closed';

export type ChatEvent =
  | { kind: 'timeline'; event: TimelineEvent }
  | { kind: 'control'; event: ControlEvent }
  /**
   * A type this client does not know (a newer runtime), or data of a known type it cannot read:
   * passed on, never an error. With an index it took its place in the timeline.
   */
  | { kind: 'unknown'; message: { type: string; data: unknown; index?: number } }
  | { kind: 'status'; status: ConnectionStatus }
  | { kind: 'processing'; processing: boolean }
  /** The socket closed (the connection reconnects unless closed); 1008 means refused: a bad token, not the user's chat. */
  | { kind: 'socket_closed'; code: number; reason: string }
  /** The runtime refused a pending action for good (it is dropped from the queue). */
  | { kind: 'rejected'; action: PendingAction; error: { message: string; error_code: string } };

export type ChatListener = (e: ChatEvent) => void;
