import type { IncomingMessage } from 'node:http';
import { mission as m } from '@tessera/contracts';
import { SocketRefusal, type Auth, type SocketEndpoint, type TokenPlace } from '@tessera/kit';
import type { MissionStore } from '../store/missions';
import { missionChat } from './conversation';
import { MissionSocket, type MissionSocketDeps } from './mission-socket';
import type { ChatStarter } from '../turns/chat-starter';

/** Document 002's order: query `token`, cookie `token` (or `session`, the original service's name), then the header. */
export const MISSION_TOKEN_PLACES: TokenPlace[] = [
  { source: 'query', name: 'token' },
  { source: 'cookie', name: 'token' },
  { source: 'cookie', name: 'session' },
  { source: 'header' },
];

export const MISSION_WS_PATH = /^\/api\/v1\/mission-ally\/ws\/?$/;

export interface MissionEndpointDeps extends MissionSocketDeps {
  starter: ChatStarter;
  missions: MissionStore;
}

/**
 * `WS /api/v1/mission-ally/ws?mission_id=…`: a refusal is `{"type":"error","message"}` then close
 * 1008 (token, mission, enrollment, completed), anything unexpected the same with 1011.
 */
export function missionEndpoint(d: MissionEndpointDeps, auth: Auth): SocketEndpoint {
  return {
    path: MISSION_WS_PATH,
    async open({ req, ws }) {
      const refuse = (message: string) => {
        d.hub.send(ws, JSON.stringify({ type: 'error', message } satisfies m.ServerMessage));
        return new SocketRefusal(message);
      };
      try {
        const principal = await auth.authenticate(req, MISSION_TOKEN_PLACES).catch((e: Error) => {
          throw refuse(`Authentication failed: ${e.message}`);
        });
        const missionId = missionIdOf(req);
        if (!missionId) throw refuse('mission_id is required');
        if (!m.MissionId.safeParse(missionId).success) throw refuse('Mission not found');
        // Among the token's apps only: another app's mission is refused as a missing one.
        const mission = await d.missions.find(missionId, principal.apps, principal.sub);
        if (!mission) throw refuse('Mission not found');
        const enrollment = await d.missions.enrollment(mission.key, principal.sub);
        if (!enrollment) throw refuse('You are not enrolled in this mission');
        if (enrollment.status === 'completed') throw refuse('This mission is already completed');
        const chat = await missionChat(d, mission, principal.sub, enrollment.chatId);
        // What the tutor completed while no socket was open is recorded now.
        const completed = ((chat.state as { completed_checkpoints?: unknown } | null)?.completed_checkpoints ?? []) as string[];
        const progress = await d.missions.record(mission.key, principal.sub, Array.isArray(completed) ? completed : []);
        if (progress?.status === 'completed') throw refuse('This mission is already completed');
        const session = new MissionSocket(d, ws, mission, chat, progress?.completed_checkpoints.length ?? 0);
        await session.open();
        return session;
      } catch (e) {
        if (!(e instanceof SocketRefusal)) d.hub.send(ws, JSON.stringify({ type: 'error', message: 'Internal error; try again' } satisfies m.ServerMessage));
        throw e;
      }
    },
  };
}

function missionIdOf(req: IncomingMessage): string | null {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get('mission_id') || null;
}
