import { jsonProblems, JSON_LIMITS, toStorableText } from '@tessera/contracts';

/**
 * OTLP values as the JSON an event stores. Spans come from agents we do not control, so every
 * reader here takes `unknown`, bounds what it keeps and never throws: a value it cannot read
 * becomes null (or the span is rejected by the caller), text loses its NUL and lone surrogates
 * (PostgreSQL stores neither) and long text is cut.
 */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export const LIMITS = {
  /** Attributes read per span, resource or span event; the rest are counted as dropped. */
  attributes: 128,
  /** Characters kept of one attribute's text (gen_ai.input.messages can hold a whole conversation). */
  text: 32_768,
  /** Items kept of one array or key-value list, and how deep such values nest. */
  items: 128,
  depth: 6,
  /** Span events read for exceptions. */
  spanEvents: 128,
} as const;

export function asObject(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Storable text cut to `max` characters (never inside a surrogate pair), or null for a non-string. */
export function text(v: unknown, max: number = LIMITS.text): string | null {
  if (typeof v !== 'string') return null;
  let s = v.length > max ? v.slice(0, max) : v;
  if (s.length === max && /[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  s = toStorableText(s);
  return v.length > max ? `${s}…[${v.length - max} more characters]` : s;
}

/** An OTLP int64 (a JSON number, a decimal string, or protobufjs's Long as a string) as a number, when it is one. */
export function int64(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null;
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : null;
  }
  return null;
}

/** Nanoseconds since the epoch (fixed64: string or number) as milliseconds, or null when unset or absurd. */
export function nanosToMs(v: unknown): number | null {
  let ns: bigint;
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) ns = BigInt(v);
  else if (typeof v === 'number' && Number.isFinite(v) && v >= 0) ns = BigInt(Math.floor(v));
  else return null;
  const ms = Number(ns / 1_000_000n) + Number(ns % 1_000_000n) / 1e6;
  // 0 means "unset" in OTLP; past year 9999 PostgreSQL and ISO 8601 part ways.
  return ms > 0 && ms < 253_402_300_800_000 ? ms : null;
}

/**
 * A trace (16 bytes) or span (8 bytes) id as lowercase hex. OTLP/JSON sends hex; protobuf's own
 * JSON mapping (and our protobuf decoding) sends base64. All zeros is invalid per the spec.
 */
export function idHex(v: unknown, bytes: 8 | 16): string | null {
  if (typeof v !== 'string') return null;
  let hex: string | null = null;
  if (v.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(v)) hex = v.toLowerCase();
  else if (v.length === Math.ceil(bytes / 3) * 4 && /^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) {
    const b = Buffer.from(v, 'base64');
    if (b.length === bytes) hex = b.toString('hex');
  }
  return hex && /[^0]/.test(hex) ? hex : null;
}

/** An OTLP AnyValue as JSON: bounded in length, items and depth; anything unreadable is null. */
export function anyValue(v: unknown, depth = 0): Json {
  const o = asObject(v);
  if (!o) return null;
  if ('stringValue' in o) return text(o.stringValue);
  if ('boolValue' in o) return typeof o.boolValue === 'boolean' ? o.boolValue : null;
  if ('intValue' in o) return int64(o.intValue) ?? text(o.intValue, 32);
  if ('doubleValue' in o) {
    const d = typeof o.doubleValue === 'string' ? Number(o.doubleValue) : o.doubleValue;
    return typeof d === 'number' && Number.isFinite(d) ? d : null;
  }
  if ('bytesValue' in o) return text(o.bytesValue);
  if (depth >= LIMITS.depth) return '[nested too deep]';
  if ('arrayValue' in o) return asArray(asObject(o.arrayValue)?.values).slice(0, LIMITS.items).map((x) => anyValue(x, depth + 1));
  if ('kvlistValue' in o) return keyValues(asObject(o.kvlistValue)?.values, LIMITS.items, depth + 1).values;
  return null;
}

/** OTLP `KeyValue[]` as an object; the first value of a repeated key wins, as in the SDKs. */
export function keyValues(list: unknown, max: number = LIMITS.attributes, depth = 0): { values: Record<string, Json>; dropped: number } {
  const values: Record<string, Json> = {};
  const items = asArray(list);
  let kept = 0;
  for (const item of items) {
    if (kept >= max) break;
    const kv = asObject(item);
    const key = kv && text(kv.key, 256);
    if (!key || Object.prototype.hasOwnProperty.call(values, key)) continue;
    values[key] = anyValue(kv.value, depth);
    kept++;
  }
  return { values, dropped: items.length - kept };
}

/**
 * A JSON document an attribute carries as text (gen_ai.tool.call.arguments, ai.toolCall.args):
 * the parsed value when it is storable, else the text itself.
 */
export function jsonText(v: Json | undefined): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') return jsonProblems(v, JSON_LIMITS, 1).length ? '[too large to keep]' : v;
  const t = v.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return v;
  try {
    const parsed = JSON.parse(t) as Json;
    return jsonProblems(parsed, JSON_LIMITS, 1).length ? v : parsed;
  } catch {
    return v;
  }
}

/** Values in a JSON value (itself included), counted without recursion. */
export function valueCount(v: Json): number {
  let n = 0;
  const stack: Json[] = [v];
  while (stack.length) {
    const x = stack.pop()!;
    n++;
    if (x !== null && typeof x === 'object') for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push(c);
  }
  return n;
}
