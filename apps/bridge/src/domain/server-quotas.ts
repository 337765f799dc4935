import { QuotaExceeded } from '@tessera/kit';
import type { BridgeConfig } from '../config';
import type { SessionStore } from '../store/sessions';
import type { Owner } from './access';

/** A place for session `id` within the user's and the app's quotas of agent servers, or a 429 that names the limit. */
export async function reserveServer(config: BridgeConfig, store: SessionStore, owner: Owner, id: string): Promise<void> {
  const perUser = config.OPENCODE_MAX_SERVERS_PER_USER;
  const perApp = config.OPENCODE_MAX_SERVERS_PER_APP;
  const r = await store.reserve(owner, id, { perUser, perApp, staleMs: config.OPENCODE_START_TIMEOUT_MS + 30_000 });
  if (r.ok) return;
  if (r.full === 'user') {
    throw new QuotaExceeded(`you hold ${r.held} agent servers, the most one user may (OPENCODE_MAX_SERVERS_PER_USER=${perUser}): close one (DELETE /api/session/{sessionId}) or wait for it to idle out`, { limit: 'OPENCODE_MAX_SERVERS_PER_USER', max: perUser, held: r.held });
  }
  throw new QuotaExceeded(`app "${owner.appId}" holds ${r.held} agent servers, the most one app may (OPENCODE_MAX_SERVERS_PER_APP=${perApp}); try again later`, { limit: 'OPENCODE_MAX_SERVERS_PER_APP', max: perApp, held: r.held });
}
