import { assertOwner, NotFound, type Principal } from '@tessera/kit';
import type { ChatRow, ChatStore } from '../store/chats';

/**
 * The chat, if the principal may use it: its user and app must match. Another user's chat is
 * reported as not found, so ids of other tenants' chats cannot be probed.
 */
export async function ownedChat(chats: ChatStore, p: Principal | undefined, chatId: string, appId?: string): Promise<ChatRow> {
  const chat = await chats.get(chatId);
  if (!chat || !isOwnChat(p, chat, appId)) throw new NotFound(`no chat "${chatId}"`);
  assertOwner(p, chat.userId, chat.appId);
  return chat;
}

/** Whether the chat is the principal's (in `appId`, when given): anything else is reported as not there. */
export function isOwnChat(p: Principal | undefined, chat: Pick<ChatRow, 'appId' | 'userId'>, appId?: string): boolean {
  return (appId === undefined || chat.appId === appId) && (!!p?.anonymous || p?.sub === chat.userId);
}

export function wsPath(workflowName: string, appId: string, chatId: string, userId: string): string {
  return `/ws/${encodeURIComponent(workflowName)}/${encodeURIComponent(appId)}/${encodeURIComponent(chatId)}/${encodeURIComponent(userId)}`;
}
