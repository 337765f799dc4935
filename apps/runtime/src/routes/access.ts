import { assertOwner, NotFound, type Principal } from '@tessera/kit';
import type { ChatRow, ChatStore } from '../store/chats';

/**
 * The chat, if the principal may use it: its user and app must match. Another user's chat is
 * reported as not found, so ids of other tenants' chats cannot be probed.
 */
export async function ownedChat(chats: ChatStore, p: Principal | undefined, chatId: string, appId?: string): Promise<ChatRow> {
  const chat = await chats.get(chatId);
  if (!chat || (appId !== undefined && chat.appId !== appId)) throw new NotFound(`no chat "${chatId}"`);
  if (!p?.anonymous && p?.sub !== chat.userId) throw new NotFound(`no chat "${chatId}"`);
  assertOwner(p, chat.userId, chat.appId);
  return chat;
}

export function wsPath(workflowName: string, appId: string, chatId: string, userId: string): string {
  return `/ws/${encodeURIComponent(workflowName)}/${encodeURIComponent(appId)}/${encodeURIComponent(chatId)}/${encodeURIComponent(userId)}`;
}
