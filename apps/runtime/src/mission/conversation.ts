import type { ChatRow, ChatStore } from '../store/chats';
import type { MissionRow, MissionStore } from '../store/missions';
import type { ChatStarter } from '../turns/chat-starter';

/** What the tutor sees of its mission (context.mission; engine/checkpoints.ts reads it). */
export function missionContext(mission: MissionRow) {
  return {
    id: mission.id,
    title: mission.title,
    description: mission.description,
    updated_at: mission.updatedAt.toISOString(),
    checkpoints: mission.checkpoints.map((c) => ({ id: c.id, title: c.title, description: c.description ?? '', ...(c.keyword && { keyword: c.keyword }) })),
  };
}

/**
 * The learner's one conversation for a mission: a runtime chat of the mission's tutor workflow,
 * found through the enrollment or started idempotently (client_request_id `mission:<id>`, so two
 * sockets opening at once get the same chat). A mission an operator changed since reaches the
 * tutor's context before the next turn.
 */
export async function missionChat(
  d: { chats: ChatStore; starter: ChatStarter; missions: MissionStore },
  mission: MissionRow,
  userId: string,
  chatId: string | null,
): Promise<ChatRow> {
  const context = missionContext(mission);
  let chat = chatId ? await d.chats.get(chatId) : null;
  if (!chat) {
    ({ chat } = await d.starter.start({
      appId: mission.appId,
      userId,
      workflowName: mission.workflowName,
      backendContext: { mission: context },
      uiContext: null,
      clientRequestId: `mission:${mission.key}`,
    }));
    await d.missions.setChat(mission.key, userId, chat.id);
  }
  const current = (chat.context ?? {}) as Record<string, unknown>;
  if ((current.mission as { updated_at?: string } | undefined)?.updated_at !== context.updated_at)
    chat = await d.chats.update(chat.id, { context: { ...current, mission: context } });
  return chat;
}
