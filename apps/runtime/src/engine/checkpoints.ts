/**
 * The `complete_checkpoint` tool of Mission Ally's tutors (document 002). A chat started for a
 * mission carries the mission in its context (`context.mission`); every agent of such a chat may
 * call the tool, and only with one of that mission's checkpoint ids. The completed list lives in
 * the conversation state, so it survives history trimming, and each completion that grows it
 * leaves a `chat.custom_event` (kind `checkpoint_completed`) on the timeline for the protocol
 * adapter, which records it and tells the learner.
 */
import type { mission as m } from '@tessera/contracts';
import type { ToolSpec } from '../providers/types';
import type { TurnExtensionSource } from './types';

export const COMPLETE_CHECKPOINT = 'complete_checkpoint';
export const CHECKPOINT_EVENT_KIND = 'checkpoint_completed';

export interface MissionCheckpoint {
  id: string;
  title: string;
  description: string;
  keyword?: string;
}

export interface MissionInContext {
  id: string;
  title: string;
  checkpoints: MissionCheckpoint[];
}

/** The mission a chat was started for, or null for every other chat. */
export function missionOf(context: Record<string, unknown>): MissionInContext | null {
  const v = context.mission as Partial<MissionInContext> | undefined;
  if (!v || typeof v !== 'object' || !Array.isArray(v.checkpoints)) return null;
  return v as MissionInContext;
}

export function checkpointTool(mission: MissionInContext): ToolSpec {
  const list = mission.checkpoints.map((c) => `${c.id}: ${c.title}${c.description ? ` (${c.description})` : ''}`).join('; ');
  return {
    name: COMPLETE_CHECKPOINT,
    description: `Record that the learner has completed a checkpoint of the mission "${mission.title}". Call it only when the learner has shown what the checkpoint asks. Checkpoints: ${list}`,
    parameters: {
      type: 'object',
      properties: { checkpoint_id: { type: 'string', enum: mission.checkpoints.map((c) => c.id), description: 'The id of the completed checkpoint' } },
      required: ['checkpoint_id'],
    },
  };
}

export interface CheckpointOutcome {
  /** The tool result the model reads. */
  result: Record<string, unknown>;
  /** Present when the completed list grew: the timeline event's payload. */
  event?: m.CheckpointEventPayload;
}

/** Applies a call to `completed` (mutated); an id outside the mission is refused in the result. */
export function completeCheckpoint(mission: MissionInContext, completed: string[], args: Record<string, unknown>): CheckpointOutcome {
  const id = typeof args.checkpoint_id === 'string' ? args.checkpoint_id : '';
  const checkpoint = mission.checkpoints.find((c) => c.id === id);
  if (!checkpoint)
    return { result: { ok: false, error: `no checkpoint "${id.slice(0, 64)}" in this mission; valid ids: ${mission.checkpoints.map((c) => c.id).join(', ')}` } };
  const grew = !completed.includes(id);
  if (grew) completed.push(id);
  const valid = completed.filter((c) => mission.checkpoints.some((k) => k.id === c));
  const progress = Math.min(100, Math.round((valid.length / mission.checkpoints.length) * 10_000) / 100);
  const missionComplete = mission.checkpoints.every((c) => completed.includes(c.id));
  const remaining = mission.checkpoints.filter((c) => !completed.includes(c.id)).map((c) => c.title);
  const result = { ok: true, checkpoint_id: id, title: checkpoint.title, already_completed: !grew, progress, mission_complete: missionComplete, remaining };
  if (!grew) return { result };
  return { result, event: { checkpoint_id: id, title: checkpoint.title, completed_checkpoints: [...valid], progress, mission_complete: missionComplete } };
}

/**
 * Mission Ally's contribution to a turn: for a chat started for a mission, the `complete_checkpoint`
 * tool (each completion that grows the list leaves a `chat.custom_event`), and the completed list
 * kept in the conversation state.
 */
export const missionCheckpoints: TurnExtensionSource = (context, state) => {
  const mission = missionOf(context);
  if (!mission) return null;
  const completed = [...(state.completed_checkpoints ?? [])];
  return {
    tools: [
      {
        spec: checkpointTool(mission),
        async call(args, agent, emit) {
          const done = completeCheckpoint(mission, completed, args);
          if (done.event) await emit('chat.custom_event', { kind: CHECKPOINT_EVENT_KIND, payload: { ...done.event, agent } });
          return done.result;
        },
      },
    ],
    saved: () => ({ completed_checkpoints: completed }),
  };
};
