// An ES module app: the built package by its name, the core and /react.
import { ChatConnection, ChatView, parseServerMessage, WsErrorCode } from '@tessera/client';
import { useChat } from '@tessera/client/react';

const map = new Map();
const storage = { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
const conn = new ChatConnection({ storage, getAccessToken: () => null, httpBaseUrl: 'http://x', wsBaseUrl: 'ws://x' }, { appId: 'a', userId: 'u', chatId: 'c', workflowName: 'w' });
const view = new ChatView(conn);
conn.setOnline(false);
view.send('hello from esm');
const read = parseServerMessage(JSON.stringify({ type: 'chat.text', index: 1, timestamp: 't', data: { message_id: 'm', agent: 'a', role: 'assistant', delta: 'hi', done: false } }));
console.log(JSON.stringify({ status: conn.status, messages: view.snapshot.messages.map((m) => m.text), read: read.kind, code: WsErrorCode.RateLimited, hook: typeof useChat }));
