/* eslint-disable @nx/enforce-module-boundaries -- an app outside the monorepo, importing the package by its name */
// A TypeScript app: the package's own .d.ts files, nothing of the monorepo's.
import { ChatConnection, ChatView, TesseraApi, parseServerMessage, type ChatEvent, type HostStorage, type TimelineEvent } from '@tessera/client';
import { useChat, type UseChat } from '@tessera/client/react';

const storage: HostStorage = { getItem: () => null, setItem: () => undefined, removeItem: () => undefined };
const host = { storage, getAccessToken: () => null, httpBaseUrl: 'http://x', wsBaseUrl: 'ws://x' };
const conn = new ChatConnection(host, { appId: 'a', userId: 'u', chatId: 'c', workflowName: 'w' });
const view = new ChatView(conn);
conn.on((e: ChatEvent) => {
  if (e.kind === 'timeline' && e.event.type === 'chat.text') {
    const delta: string = e.event.data.delta;
    void delta;
  }
});
const m = parseServerMessage('{}');
if (m?.kind === 'timeline') {
  const t: TimelineEvent = m.event;
  void t;
}
async function start(): Promise<string> {
  const chat = await new TesseraApi(host).startChat({ appId: 'a', userId: 'u', workflowName: 'w' });
  return chat.chat_id;
}
const hook: (o: Parameters<typeof useChat>[0]) => UseChat = useChat;
// @ts-expect-error the typed API refuses what the contracts do not allow
const wrong: number = view.snapshot.messages[0].text;
export { start, hook, wrong };
