/**
 * `@tessera/client/react`: the `useChat` hook over the core (ChatConnection, ChatView, TesseraApi).
 *
 * Against the agreed contract (/tmp/brief/react-contract.md), additions only:
 * - `UseChatOptions.connection`: the ChatConnection's options (backoff, composer response).
 * - `ChatMessage.agent`: the agent that wrote a message ('user' for the user).
 * - A user message acknowledged by the runtime but whose turn has not begun (queued behind
 *   another) shows with `pending: false, index: null`; it gets its index when its turn writes it.
 * - `UseChat.connection`: the underlying ChatConnection (null until the chat is known), for what
 *   the hook does not cover (online/offline, foreground, commands, `lastAppliedIndex`).
 * - `UseChat.upload(file)`: `POST /api/chat/upload`; `chat.attachment_uploaded` follows.
 * And in behaviour:
 * - `stop()` resolves once the runtime accepted the stop; a refusal sets `error` (it never rejects).
 * - `send` before the chat is started (chatId still null) is held in memory and queued (persisted)
 *   as soon as the chat id is known.
 * - `host` is read when app, user, workflow or chat id change, not on every render: a new host
 *   object each render does not reconnect.
 */
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { TesseraApi, TesseraHttpError, type UploadBody } from '../api';
import { ChatConnection, type ChatConnectionOptions } from '../connection';
import { ChatView, type ChatSnapshot } from '../chat-view';
import type { Host } from '../host';
import type { MultitaskStrategy } from '../pending';

export type { ChatMessage, ToolCallAwaiting, ChatUsage, ChatSnapshot } from '../chat-view';
export type { ConnectionStatus } from '../events';

export interface UseChatOptions {
  host: Host;
  appId: string;
  userId: string;
  workflowName: string;
  /** null/undefined: start a chat (idempotent client_request_id) on first use. */
  chatId?: string | null;
  /** Backoff and composer options of the ChatConnection. */
  connection?: ChatConnectionOptions;
}

export interface UseChat extends ChatSnapshot {
  chatId: string | null;
  connection: ChatConnection | null;
  /** `multitaskStrategy`: what the message does while a turn runs (see ChatConnection.send). */
  send(text: string, context?: Record<string, unknown>, opts?: { multitaskStrategy?: MultitaskStrategy }): void;
  answer(eventId: string, response: Record<string, unknown>): void;
  stop(): Promise<void>;
  /** Reconnect now (after a drop or while waiting for the backoff). */
  resume(): void;
  /** Close the socket on purpose; the connection reconnects and resumes. */
  drop(): void;
  /** Uploads a file to the chat; resolves with the attachment, or null (and `error` set) when refused. */
  upload(file: UploadBody, opts?: { filename?: string; intent?: string; bundlePath?: string }): Promise<{ attachment_id: string } | null>;
}

const IDLE: ChatSnapshot = { messages: [], streamingText: '', toolCalls: [], usage: null, status: 'idle', processing: false, error: null };

export function useChat(opts: UseChatOptions): UseChat {
  const { appId, userId, workflowName } = opts;
  const hostRef = useRef(opts.host);
  hostRef.current = opts.host;
  const connOptsRef = useRef(opts.connection);
  connOptsRef.current = opts.connection;

  const chatKey = `${appId}\u0000${userId}\u0000${workflowName}`;
  const [started, setStarted] = useState<{ key: string; chatId: string } | null>(null);
  const [startError, setStartError] = useState<string | null>(null);
  const chatId = opts.chatId ?? (started?.key === chatKey ? started.chatId : null);

  useEffect(() => {
    if (opts.chatId) return;
    let current = true;
    setStartError(null);
    new TesseraApi(hostRef.current).startChat({ appId, userId, workflowName }).then(
      (r) => current && setStarted({ key: chatKey, chatId: r.chat_id }),
      (err) => current && setStartError(`the chat could not start: ${words(err)}`),
    );
    return () => {
      current = false;
    };
  }, [appId, userId, workflowName, chatKey, opts.chatId]);

  const [view, setView] = useState<ChatView | null>(null);
  const early = useRef<((v: ChatView) => void)[]>([]);
  useEffect(() => {
    if (!chatId) return;
    const conn = new ChatConnection(hostRef.current, { appId, userId, chatId, workflowName }, connOptsRef.current);
    const v = new ChatView(conn);
    for (const act of early.current.splice(0)) act(v);
    setView(v);
    conn.connect();
    return () => {
      v.dispose();
      conn.close();
      setView(null);
    };
  }, [appId, userId, workflowName, chatId]);

  const subscribe = useCallback((l: () => void) => (view ? view.subscribe(l) : () => undefined), [view]);
  const getSnapshot = useCallback(() => view?.snapshot ?? IDLE, [view]);
  const snap = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);

  const viewRef = useRef(view);
  viewRef.current = view;
  const act = useCallback((f: (v: ChatView) => void) => {
    if (viewRef.current) f(viewRef.current);
    else early.current.push(f);
  }, []);

  const send = useCallback(
    (text: string, context?: Record<string, unknown>, opts?: { multitaskStrategy?: MultitaskStrategy }) => act((v) => void v.send(text, context, opts)),
    [act],
  );
  const answer = useCallback((eventId: string, response: Record<string, unknown>) => act((v) => void v.answer(eventId, response)), [act]);
  const resume = useCallback(() => viewRef.current?.connection.reconnect(), []);
  const drop = useCallback(() => viewRef.current?.connection.drop(), []);
  const stop = useCallback(async () => {
    if (!chatId) return;
    try {
      await new TesseraApi(hostRef.current).stopChat(appId, chatId);
    } catch (err) {
      viewRef.current?.setError(`the chat could not be stopped: ${words(err)}`);
    }
  }, [appId, chatId]);
  const upload = useCallback(
    async (file: UploadBody, o: { filename?: string; intent?: string; bundlePath?: string } = {}) => {
      if (!chatId) {
        viewRef.current?.setError('the chat has not started yet');
        return null;
      }
      try {
        return await new TesseraApi(hostRef.current).upload({ appId, userId, chatId, file, ...o });
      } catch (err) {
        viewRef.current?.setError(`the upload failed: ${words(err)}`);
        return null;
      }
    },
    [appId, userId, chatId],
  );

  return useMemo(
    () => ({ ...snap, error: snap.error ?? startError, chatId, connection: view?.connection ?? null, send, answer, stop, resume, drop, upload }),
    [snap, startError, chatId, view, send, answer, stop, resume, drop, upload],
  );
}

function words(err: unknown): string {
  if (err instanceof TesseraHttpError) return `${err.message} (${err.status} ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}
