import { observability, type SessionControl } from '@tessera/contracts';
import { Conflict, Unavailable } from '@tessera/kit';
import type { z } from 'zod';
import { publishControl } from '../bus/control';
import { publishLive } from '../bus/live';
import type { ObservabilityRoutes, ObservabilityServices } from '../services';
import { keyOfRow, toSession } from '../store/sessions';
import { locateOrThrow, notFound } from './locate';

const Params = observability.SessionParams;
const AppQuery = observability.SessionAppQuery;
const forbidden = { 403: { description: 'not an operator' } };
const missing = {
  404: { description: 'no such session in your apps (another app’s session answers the same)' },
  409: { description: 'the id is a session of several of your apps: name one with app_id' },
};

/**
 * An operator's view of sessions: every route acts in the token's apps (`req.sessionScope`, set by
 * the operator guard; the service key reads every app), and an id names a session within them
 * (`?app_id=` chooses when several of them use it).
 */
export function sessionRoutes(routes: ObservabilityRoutes, s: ObservabilityServices): void {
  const live = (m: Parameters<typeof publishLive>[1]) =>
    publishLive(s.bus, m).catch((e: Error) => s.logger.warn('could not publish a session change', { kind: m.kind, error: e.message }));

  routes.route(
    {
      method: 'get',
      path: '/sessions',
      summary: 'Sessions of your apps, most recently modified first (operator token)',
      tags: ['sessions'],
      access: 'operator',
      query: observability.SessionsQuery,
      responses: { 200: { description: 'a page of sessions', schema: observability.SessionsReply }, ...forbidden },
    },
    async ({ query }, req, res) => {
      const { sessions, next_cursor } = await s.sessions.list(req.sessionScope!, query);
      const reply: z.infer<typeof observability.SessionsReply> = { sessions, next_cursor };
      res.json(reply);
    },
  );

  routes.route(
    { method: 'get', path: '/sessions/{session_id}', summary: 'One session', tags: ['sessions'], access: 'operator', params: Params, query: AppQuery, responses: { 200: { description: 'the session', schema: observability.Session }, ...forbidden, ...missing } },
    async ({ params: { session_id }, query: { app_id } }, req, res) => {
      res.json(toSession(await locateOrThrow(s.sessions, req.sessionScope!, session_id, app_id)));
    },
  );

  routes.route(
    {
      method: 'patch',
      path: '/sessions/{session_id}/metadata',
      summary: "Correct a session's name, project folder or agent",
      tags: ['sessions'],
      access: 'operator',
      params: Params,
      query: AppQuery,
      body: observability.MetadataBody,
      responses: { 200: { description: 'the session as it now is', schema: observability.MetadataReply }, ...forbidden, ...missing },
    },
    async ({ params: { session_id }, query: { app_id }, body }, req, res) => {
      const scope = req.sessionScope!;
      const found = await locateOrThrow(s.sessions, scope, session_id, app_id);
      const row = await s.sessions.patchMetadata(scope, keyOfRow(found), body);
      if (!row) throw notFound(session_id);
      const session = toSession(row);
      await live({ kind: 'session_updated', app_id: session.app_id, session });
      const reply: z.infer<typeof observability.MetadataReply> = { ok: true, session };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'delete',
      path: '/sessions/{session_id}',
      summary: 'Delete a session and its events: gone from every read at once; late events are dropped',
      tags: ['sessions'],
      access: 'operator',
      params: Params,
      query: AppQuery,
      responses: { 200: { description: 'deleted', schema: observability.DeleteReply }, ...forbidden, ...missing },
    },
    async ({ params: { session_id }, query: { app_id } }, req, res) => {
      const scope = req.sessionScope!;
      const found = await locateOrThrow(s.sessions, scope, session_id, app_id);
      const deleted = await s.sessions.delete(scope, keyOfRow(found));
      if (!deleted) throw notFound(session_id);
      const appId = toSession(found).app_id;
      await live({ kind: 'session_deleted', app_id: appId, session_id });
      const reply: z.infer<typeof observability.DeleteReply> = { ok: true, session_id, app_id: appId, deleted: { events: deleted.events } };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'post',
      path: '/sessions/{session_id}/stop',
      summary: "Stop a running session: the runtime aborts the chat's turn, the bridge closes its agent server",
      tags: ['sessions'],
      access: 'operator',
      params: Params,
      query: AppQuery,
      responses: {
        200: { description: 'stop sent; the session is stopped', schema: observability.StopReply },
        ...forbidden,
        ...missing,
        409: { description: 'the session is finished or already stopped, or the id is a session of several of your apps (name one with app_id)' },
      },
    },
    async ({ params: { session_id }, query: { app_id } }, req, res) => {
      const scope = req.sessionScope!;
      const key = keyOfRow(await locateOrThrow(s.sessions, scope, session_id, app_id));
      // The status moves first, in one conditional statement: of two stops at once, one wins.
      const change = await s.sessions.setStatus(scope, key, 'stopped', ['running']);
      if ('missing' in change) throw notFound(session_id);
      if ('conflict' in change) throw new Conflict(`session "${session_id}" is already ${change.conflict}`, { status: change.conflict });
      const session = toSession(change.session);
      // The stop names the session's app: only that app's runtime chat or bridge session stops. A
      // session of no app is nobody's chat or bridge session (both always name their app): it is
      // marked stopped, and no stop is sent.
      if (session.app_id !== null) {
        const control: SessionControl = { action: 'stop', session_id, app_id: session.app_id, requested_by: req.principal?.sub, reason: 'stopped by an operator' };
        try {
          await publishControl(s.bus, control);
        } catch (e) {
          // Nobody was told to stop: the session is not stopped either.
          await s.sessions.setStatus('*', key, 'running', ['stopped']).catch(() => undefined);
          throw new Unavailable('could not send the stop; try again', { error: (e as Error).message });
        }
      }
      await live({ kind: 'session_updated', app_id: session.app_id, session });
      const reply: z.infer<typeof observability.StopReply> = { success: true, session_id, app_id: session.app_id, message: 'Session stopped successfully' };
      res.json(reply);
    },
  );
}
