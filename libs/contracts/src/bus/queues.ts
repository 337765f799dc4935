import { z } from 'zod';

/**
 * Every BullMQ queue in Tessera, its job name and payload schema, in one typed map so that a
 * producer and its worker cannot disagree (Langfuse's queues.ts pattern).
 */
export const Queue = {
  /** A chat has pending input: a runtime worker takes the chat's lease and runs its turns. */
  RuntimeTurns: 'runtime-turns',
  /** Every chat timeline event, for observability to store. */
  ObservabilityEvents: 'observability-events',
} as const;
export type QueueName = (typeof Queue)[keyof typeof Queue];

export const TurnJob = z.object({
  chat_id: z.string(),
  app_id: z.string(),
  /** The input that caused this job; the worker drains every pending input of the chat in order. */
  input_id: z.string(),
});
export type TurnJob = z.infer<typeof TurnJob>;

export const ObservedEvent = z.object({
  session_id: z.string().describe('= chat id'),
  app_id: z.string(),
  user_id: z.string(),
  workflow_name: z.string(),
  agent: z.string().nullable(),
  index: z.number().int(),
  type: z.string(),
  payload: z.unknown(),
  /** Of `chat.usage_delta` and `chat.usage_summary`: the data's tokens (the runtime's Usage). */
  usage: z
    .object({
      prompt_tokens: z.number().int(),
      completion_tokens: z.number().int(),
      total_tokens: z.number().int(),
      cache_read_tokens: z.number().int().optional(),
      cache_write_tokens: z.number().int().optional(),
      reasoning_tokens: z.number().int().optional(),
    })
    .nullable(),
  timestamp: z.string(),
});
export type ObservedEvent = z.infer<typeof ObservedEvent>;

/** Events travel in batches (one job per write of the chat's log) to keep Redis work per event small. */
export const ObservedEventBatch = z.object({ events: z.array(ObservedEvent).min(1).max(1000) });
export type ObservedEventBatch = z.infer<typeof ObservedEventBatch>;

export const QueueJobs = {
  [Queue.RuntimeTurns]: { name: 'turn', data: TurnJob },
  [Queue.ObservabilityEvents]: { name: 'events', data: ObservedEventBatch },
} as const satisfies Record<QueueName, { name: string; data: z.ZodType }>;

export type QueueJobName<Q extends QueueName> = (typeof QueueJobs)[Q]['name'];
export type QueueJobData<Q extends QueueName> = z.infer<(typeof QueueJobs)[Q]['data']>;
