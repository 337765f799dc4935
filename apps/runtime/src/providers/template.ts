/**
 * `{{name}}` placeholders of workflow text (scripted replies, system prompts). A placeholder may
 * carry a fallback, `{{context.user_tier|standard}}`, used when the value is missing or empty; a
 * missing value without a fallback renders as the empty string, never as `undefined`.
 */

const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.-]*)\s*(?:\|([^}]*))?\}\}/g;

export type TemplateLookup = (name: string) => unknown;

export function renderTemplate(text: string, lookup: TemplateLookup): string {
  if (!text.includes('{{')) return text;
  return text.replace(PLACEHOLDER, (_m, name: string, fallback: string | undefined) => {
    const s = stringifyValue(lookup(name));
    return s === '' && fallback !== undefined ? fallback.trim() : s;
  });
}

/** Renders every string inside a JSON-like value (scripted tool-call arguments). */
export function renderDeep(value: unknown, lookup: TemplateLookup): unknown {
  if (typeof value === 'string') return renderTemplate(value, lookup);
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, lookup));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = renderDeep(v, lookup);
    return out;
  }
  return value;
}

/** The placeholder names a text uses (for validating workflow files). */
export function placeholderNames(text: string): string[] {
  const names: string[] = [];
  for (const m of text.matchAll(PLACEHOLDER)) names.push(m[1]);
  return names;
}

export function stringifyValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '';
  }
}

/** `getPath({a: {b: 1}}, 'a.b')` → 1; undefined when any step is missing. */
export function getPath(root: unknown, path: string): unknown {
  let cur: unknown = root;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** Context placeholders: `context.<name>` looked up in the given variables. */
export function contextLookup(context: Record<string, unknown> | undefined): TemplateLookup {
  return (name) => (name.startsWith('context.') && context ? getPath(context, name.slice(8)) : undefined);
}
