import type { ControlData } from '@tessera/contracts';
import type { z } from 'zod';

/** A message that is not part of the timeline (no index, never replayed). */
export function control<T extends keyof typeof ControlData>(type: T, data: z.infer<(typeof ControlData)[T]>): string {
  return JSON.stringify({ type, data, timestamp: new Date().toISOString() });
}
