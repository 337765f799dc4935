import { Conflict, NotFound } from '@tessera/kit';
import type { AppScope } from '../domain/access';
import type { SessionRow, SessionStore } from '../store/sessions';

export const notFound = (id: string) => new NotFound(`no session "${id}"`);

/**
 * The session a path's id names for this caller (SessionStore.locate), or the answer: 404 when
 * none of the caller's apps has it (exactly as for an id nobody uses), 409 naming the caller's
 * apps that do when there are several and `app_id` does not choose.
 */
export async function locateOrThrow(sessions: SessionStore, scope: AppScope, id: string, app: string | undefined): Promise<SessionRow> {
  const found = await sessions.locate(scope, id, app);
  if ('row' in found) return found.row;
  if ('missing' in found) throw notFound(id);
  throw new Conflict(`session "${id}" exists in several of your apps; name one with ?app_id=`, { app_ids: found.apps });
}
