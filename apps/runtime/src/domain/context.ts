/**
 * Context variables of a chat: what a trusted backend sends is kept as is; what a client sends
 * is stored under `ui_<key>` and can never overwrite a backend value (document 000 §3).
 */
export const UI_PREFIX = 'ui_';

export function uiKey(key: string): string {
  return key.startsWith(UI_PREFIX) ? key : UI_PREFIX + key;
}

export function mergeContext(
  backend: Record<string, unknown> | null | undefined,
  client: Record<string, unknown> | null | undefined,
  existing: Record<string, unknown> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...existing, ...(backend ?? {}) };
  const protectedKeys = new Set(Object.keys({ ...existing, ...(backend ?? {}) }).filter((k) => !k.startsWith(UI_PREFIX)));
  for (const [k, v] of Object.entries(client ?? {})) {
    const key = uiKey(k);
    if (protectedKeys.has(key)) continue;
    out[key] = v;
  }
  return out;
}

/** Stable per chat: what a client uses to key its caches for this chat. */
export function cacheSeedOf(chatId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < chatId.length; i++) {
    h ^= chatId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 1; // a positive 31-bit integer
}
