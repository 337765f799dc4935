import type { BackendContext } from '@tessera/contracts';

/**
 * Backend-only context of a chat (document 000 §3): what agents may know about the user that the
 * client must neither see nor set. It is built here, on the server, from the verified token and
 * the host application's data, and reaches the runtime as trusted `initial_context`.
 *
 * Layers, later ones winning:
 *   1. the context source's defaults (`"*"` of CONTEXT_FILE)
 *   2. the token's claims: `tier` → `user_tier`, `permissions` (else `roles`) → `user_permissions`
 *   3. the context source's entry for the user (CONTEXT_FILE or CONTEXT_SOURCE_URL): live data of
 *      the host application, e.g. `account_age_days`, `support_priority`, `internal_customer_id`
 *
 * Keys with the `ui_` prefix are left out: that namespace belongs to what clients send.
 */
export interface ContextLayers {
  defaults?: BackendContext;
  claims: Record<string, unknown>;
  user?: BackendContext;
}

const UI_PREFIX = 'ui_';

export function claimsContext(claims: Record<string, unknown>): BackendContext {
  const out: BackendContext = {};
  if (typeof claims.tier === 'string' && claims.tier) out.user_tier = claims.tier;
  const permissions = listClaim(claims.permissions) ?? listClaim(claims.roles);
  if (permissions) out.user_permissions = permissions;
  return out;
}

export function buildBackendContext(layers: ContextLayers): BackendContext {
  const merged: BackendContext = { ...layers.defaults, ...claimsContext(layers.claims), ...layers.user };
  return Object.fromEntries(Object.entries(merged).filter(([k, v]) => !k.startsWith(UI_PREFIX) && v !== undefined));
}

/** A claim holding a list: an array, or a space/comma separated string (OAuth `scope` style). */
function listClaim(v: unknown): string[] | undefined {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  return undefined;
}
