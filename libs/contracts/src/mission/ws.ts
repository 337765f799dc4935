import { z } from 'zod';
import { SafeText } from '../common/safe';

/**
 * Document 002's WebSocket messages, as its examples send and read them (`WS
 * /api/v1/mission-ally/ws?mission_id=…`). Flat objects with a `type`, unlike document 003's
 * envelopes: learners' frontends written from the document must work unchanged.
 */

export const CLIENT_MESSAGE_TYPES = ['user_message', 'ping'] as const;

export const ClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('user_message'), message: SafeText.pipe(z.string().min(1, 'must be at least 1 character').max(20_000)) }),
  z.object({ type: z.literal('ping') }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const HistoryItem = z.object({ type: z.enum(['user_message', 'agent_message']), message: z.string() });
export type HistoryItem = z.infer<typeof HistoryItem>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('connected'), message: z.string() }),
  z.object({ type: z.literal('historical_messages'), messages: z.array(HistoryItem) }),
  z.object({ type: z.literal('agent_processing_start') }),
  z.object({ type: z.literal('agent_message'), message: z.string() }),
  z.object({ type: z.literal('agent_processing_end') }),
  z.object({ type: z.literal('agent_handover'), agent: z.string(), message: z.string() }),
  z.object({ type: z.literal('checkpoint_update'), completed_checkpoints: z.array(z.string()), progress: z.number().min(0).max(100) }),
  z.object({ type: z.literal('session_closed'), message: z.string() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** The timeline event (`chat.custom_event` kind) a tutor's `complete_checkpoint` call leaves. */
export const CHECKPOINT_EVENT_KIND = 'checkpoint_completed';
export const CheckpointEventPayload = z.object({
  checkpoint_id: z.string(),
  title: z.string(),
  completed_checkpoints: z.array(z.string()),
  progress: z.number(),
  mission_complete: z.boolean(),
});
export type CheckpointEventPayload = z.infer<typeof CheckpointEventPayload>;
