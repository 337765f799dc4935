/**
 * Runtime → client socket messages read at the edge: parsed once with the validators generated
 * from the contracts (wire.gen.ts, zod/mini), then trusted as typed values inside the client.
 */
import { ControlData, ServerEnvelope, TimelineData } from './wire.gen';
import type { ControlEvent, ControlType, TimelineEvent, TimelineType } from './events';

export type ServerMessage =
  | { kind: 'timeline'; event: TimelineEvent }
  | { kind: 'control'; event: ControlEvent }
  /**
   * A type this client does not know (a newer runtime), or data it cannot read. With an index it
   * still takes its place in the timeline, so the events after it are applied in order.
   */
  | { kind: 'unknown'; message: { type: string; data: unknown; index?: number } };

const has = <K extends string>(m: Record<K, unknown>, k: string): k is K => Object.prototype.hasOwnProperty.call(m, k);

/** What one socket frame is; null when it is no Tessera envelope at all (not JSON, no type). */
export function parseServerMessage(raw: string): ServerMessage | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  const env = ServerEnvelope.safeParse(json);
  if (!env.success) {
    const m = json as { type?: unknown; data?: unknown; index?: unknown } | null;
    if (typeof m?.type !== 'string') return null;
    // A broken envelope that claims an index still holds that place in the timeline.
    const index = typeof m.index === 'number' && Number.isSafeInteger(m.index) && m.index > 0 ? m.index : undefined;
    return { kind: 'unknown', message: { type: m.type, data: m.data, ...(index !== undefined && { index }) } };
  }
  const { type, data, timestamp, index } = env.data;
  if (index !== undefined) {
    const parsed = has(TimelineData, type) ? TimelineData[type].safeParse(data) : null;
    if (parsed?.success) return { kind: 'timeline', event: { type: type as TimelineType, index, data: parsed.data, timestamp } as TimelineEvent };
    return { kind: 'unknown', message: { type, data, index } };
  }
  const parsed = has(ControlData, type) ? ControlData[type].safeParse(data) : null;
  if (parsed?.success) return { kind: 'control', event: { type: type as ControlType, data: parsed.data, timestamp } as ControlEvent };
  return { kind: 'unknown', message: { type, data } };
}
