import { z } from 'zod';
import { AppId, UserId, WorkflowName } from '../common/ids';
import { SafeText } from '../common/safe';

/**
 * Mission Ally's operator API (document 002 has none; missions were made by hand in the original
 * service): missions with ordered checkpoints, enrollments, and each learner's progress. Served by
 * the runtime under `/api/v1/mission-ally/missions`; an operator token (claim `roles` holding
 * `operator`) scoped to the token's apps.
 */

export const MissionId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'mission ids are letters, digits, _ and -');
export const CheckpointId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'checkpoint ids are letters, digits, _ and -');

const Text = (max: number) => SafeText.pipe(z.string().trim().min(1, 'is required').max(max));

export const Checkpoint = z
  .object({
    id: CheckpointId,
    title: Text(200),
    /** What completing it means: the tutor checks the learner against this. */
    description: SafeText.pipe(z.string().max(4_000)).default(''),
    /** A word the scripted tutor recognises in the learner's message as this checkpoint done (default: the id). */
    keyword: SafeText.pipe(z.string().trim().min(1).max(100)).optional(),
  })
  .strict()
  .meta({ id: 'MissionCheckpoint' });
export type Checkpoint = z.infer<typeof Checkpoint>;

const Checkpoints = z
  .array(Checkpoint)
  .min(1, 'a mission has at least one checkpoint')
  .max(100)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((c, i) => {
      if (seen.has(c.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate checkpoint id "${c.id}"` });
      seen.add(c.id);
    });
  });

export const DEFAULT_TUTOR = 'mission_ally';

export const CreateMissionBody = z
  .object({
    /** Chosen by the operator (the id learners' frontends use), or generated. */
    id: MissionId.optional(),
    app_id: AppId,
    title: Text(200),
    description: SafeText.pipe(z.string().max(10_000)).default(''),
    /** The tutor workflow: `mission_ally` (scripted, no model) or `mission_ally_llm`. */
    workflow_name: WorkflowName.default(DEFAULT_TUTOR),
    checkpoints: Checkpoints,
  })
  .strict()
  .meta({ id: 'CreateMissionBody' });
export type CreateMissionBody = z.infer<typeof CreateMissionBody>;

/** Partial: only the fields given change; `checkpoints` replaces the whole list. */
export const UpdateMissionBody = z
  .object({ title: Text(200), description: SafeText.pipe(z.string().max(10_000)), workflow_name: WorkflowName, checkpoints: Checkpoints })
  .partial()
  .strict()
  .meta({ id: 'UpdateMissionBody' });
export type UpdateMissionBody = z.infer<typeof UpdateMissionBody>;

export const Mission = z
  .object({
    id: z.string(),
    app_id: z.string(),
    title: z.string(),
    description: z.string(),
    workflow_name: z.string(),
    checkpoints: z.array(z.object({ id: z.string(), title: z.string(), description: z.string(), keyword: z.string().optional() })),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Mission' });
export type Mission = z.infer<typeof Mission>;
/** A list names its items (README: List replies). */
export const MissionsReply = z.object({ missions: z.array(Mission) }).meta({ id: 'MissionsReply' });

export const MissionParams = z.object({ mission_id: MissionId });
export const EnrollmentParams = z.object({ mission_id: MissionId, user_id: UserId });
export const MissionsQuery = z.object({ app_id: AppId.optional() });

export const EnrollBody = z.object({ user_id: UserId }).strict().meta({ id: 'EnrollBody' });

export const EnrollmentStatus = z.enum(['active', 'completed']);

/** An enrollment with its progress: completed / total × 100, capped at 100. */
export const Enrollment = z
  .object({
    mission_id: z.string(),
    user_id: z.string(),
    status: EnrollmentStatus,
    chat_id: z.string().nullable(),
    completed_checkpoints: z.array(z.string()),
    progress: z.number().min(0).max(100),
    enrolled_at: z.string(),
    completed_at: z.string().nullable(),
  })
  .meta({ id: 'MissionEnrollment' });
export type Enrollment = z.infer<typeof Enrollment>;
export const EnrollmentsReply = z.object({ enrollments: z.array(Enrollment) }).meta({ id: 'MissionEnrollmentsReply' });

/** Progress as document 002 reports it: a percentage with two decimals, never above 100. */
export function progressOf(completed: number, total: number): number {
  if (total <= 0) return 0;
  return Math.min(100, Math.round((completed / total) * 10_000) / 100);
}
