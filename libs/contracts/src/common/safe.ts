import { z } from 'zod';

/**
 * Text and JSON a client sends must be storable as is: PostgreSQL refuses NUL in text and jsonb,
 * a lone UTF-16 surrogate has no UTF-8 form, and deep nesting overflows recursive code (Prisma's
 * serialiser, JSON.stringify). Refusing them here, at the contract edge, makes each a 400 (or
 * `chat.error SCHEMA_VALIDATION_FAILED`) naming the field, instead of a 500 from deep inside.
 */
export const JSON_LIMITS = {
  /** Levels of objects/arrays inside one JSON field (the field itself is level 1). */
  depth: 32,
  /** Values (objects, arrays, scalars, keys not counted) inside one JSON field. */
  values: 10_000,
} as const;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why a string cannot be stored, or null when it can. */
export function unstorableText(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character (U+0000)';
  const m = LONE_SURROGATE.exec(s);
  if (m) return `contains a lone surrogate (U+${m[0].charCodeAt(0).toString(16).toUpperCase()})`;
  return null;
}

/** The text with each NUL and lone surrogate replaced by U+FFFD: for names a client cannot easily fix (an upload's filename). */
export function toStorableText(s: string): string {
  return s.replace(/\u0000/g, '\uFFFD').replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD');
}

export interface JsonProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The first problems of a JSON value: unstorable strings or keys, nesting past `depth`, more
 * than `values` values. Iterative, so a value nested 100,000 deep is measured, not overflowed on.
 */
export function jsonProblems(value: unknown, limits: { depth: number; values: number; text?: boolean }, max = 5): JsonProblem[] {
  const problems: JsonProblem[] = [];
  const stack: { v: unknown; path: (string | number)[]; depth: number }[] = [{ v: value, path: [], depth: 0 }];
  let count = 0;
  while (stack.length && problems.length < max) {
    const { v, path, depth } = stack.pop()!;
    if (++count > limits.values) {
      problems.push({ path: [], message: `holds more than ${limits.values} values` });
      break;
    }
    if (typeof v === 'string') {
      const why = limits.text === false ? null : unstorableText(v);
      if (why) problems.push({ path, message: `text ${why}` });
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limits.depth) {
      problems.push({ path, message: `nests deeper than ${limits.depth} levels` });
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i], depth: depth + 1 });
      continue;
    }
    const entries = Object.entries(v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, child] = entries[i];
      const why = limits.text === false ? null : unstorableText(k);
      // The key itself goes into the message escaped: a path segment holding NUL helps nobody.
      if (why) problems.push({ path, message: `key ${JSON.stringify(k)} ${why}` });
      else stack.push({ v: child, path: [...path, k], depth: depth + 1 });
    }
  }
  return problems;
}

/** A string PostgreSQL can store: no NUL, no lone surrogate. Chain `.min()`/`.max()` as usual. */
export const SafeText = z.string().superRefine((s, ctx) => {
  const why = unstorableText(s);
  if (why) ctx.addIssue({ code: 'custom', message: `text ${why}` });
});

/**
 * A JSON object of a client (context, a tool's response): storable strings and keys at every
 * level, at most JSON_LIMITS.depth levels and JSON_LIMITS.values values. An issue names the
 * offending path inside the field, e.g. `body.context.a.b`.
 */
export const SafeJsonRecord = z
  .record(z.string(), z.unknown())
  .superRefine((v, ctx) => {
    for (const p of jsonProblems(v, JSON_LIMITS)) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
  })
  .describe(`JSON object; no NUL or lone surrogates in keys or strings, at most ${JSON_LIMITS.depth} levels deep and ${JSON_LIMITS.values} values`);
