/**
 * Which chat the terminal joins: a new one through the session broker (as an app's backend
 * starts them, with backend-only context) or at the runtime directly, or an existing one by id.
 * Every failure becomes a sentence the user can act on.
 */
import { randomUUID } from 'node:crypto';
import { TesseraApi, TesseraHttpError, type ChatIds, type Host } from '@tessera/client';
import type { ChatOptions } from './options';

export class ChatStartError extends Error {}

export interface Joined {
  ids: ChatIds;
  /** How the chat was found or made, said once at start. */
  how: string;
}

/** Parses `/ws/{workflow}/{app}/{chat}/{user}` (the runtime's path form, behind any origin). */
export function idsFromSocketUrl(websocketUrl: string): ChatIds | null {
  const path = websocketUrl.startsWith('/') ? websocketUrl : URL.canParse(websocketUrl) ? new URL(websocketUrl).pathname : '';
  const m = /\/ws\/([^/?]+)\/([^/?]+)\/([^/?]+)\/([^/?]+)$/.exec(path.split('?')[0]);
  if (!m) return null;
  const [workflowName, appId, chatId, userId] = m.slice(1).map(decodeURIComponent);
  return { workflowName, appId, chatId, userId };
}

export async function joinChat(o: ChatOptions, host: Host): Promise<Joined> {
  const api = new TesseraApi(host, { retries: 2 });
  try {
    if (o.chatId) return await rejoin(o, api);
    const workflow = o.workflow!;
    if (!o.direct && !o.appGiven) {
      const viaBroker = await startAtBroker(o, workflow);
      if (viaBroker) return viaBroker;
    }
    const r = await api.startChat({ appId: o.appId, userId: o.userId, workflowName: workflow });
    return { ids: { appId: o.appId, userId: o.userId, chatId: r.chat_id, workflowName: workflow }, how: 'started at the runtime' };
  } catch (e) {
    throw new ChatStartError(inWords(e, o));
  }
}

/** POST /api/mozaiks/session; null when no broker answers (not deployed, unreachable behind the gateway). */
async function startAtBroker(o: ChatOptions, workflow: string): Promise<Joined | null> {
  const body = JSON.stringify({ workflow_name: workflow, client_request_id: randomUUID() });
  // The same client_request_id on a retry: the broker (and the runtime behind it) make one chat.
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${o.url}/api/mozaiks/session`, { method: 'POST', headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' }, body });
    } catch (e) {
      if (attempt < 2) {
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
        continue;
      }
      throw e;
    }
    const text = await res.text();
    let json: { chat_id?: string; websocket_url?: string; error?: { code?: string; message?: string } } | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok && json?.websocket_url) {
      const ids = idsFromSocketUrl(json.websocket_url);
      if (!ids) throw new ChatStartError(`the broker answered a socket URL this client does not know: ${json.websocket_url}`);
      return { ids, how: 'started through the session broker' };
    }
    // The gateway's answer for a broker that is off or down: start at the runtime instead.
    if (res.status === 502 || (res.status === 503 && /broker/i.test(json?.error?.message ?? ''))) {
      process.stderr.write(`[chat] the session broker is not available (${res.status}: ${json?.error?.message ?? res.statusText}); starting the chat at the runtime\n`);
      return null;
    }
    throw new TesseraHttpError(res.status, json?.error?.code ?? `HTTP_${res.status}`, json?.error?.message ?? `POST /api/mozaiks/session answered ${res.status}`);
  }
}

async function rejoin(o: ChatOptions, api: TesseraApi): Promise<Joined> {
  const chatId = o.chatId!;
  if (o.workflow) {
    const meta = await api.chatMeta(o.appId, o.workflow, chatId);
    return { ids: { appId: o.appId, userId: o.userId, chatId, workflowName: meta.workflow_name }, how: 'rejoined' };
  }
  const found = (await api.sessions(o.appId, o.userId)).find((s) => s.chat_id === chatId);
  if (!found) throw new ChatStartError(`no chat ${chatId} among your recent chats in app ${o.appId}; name its workflow too: npm run chat -- <workflow> --chat ${chatId}`);
  return { ids: { appId: o.appId, userId: o.userId, chatId, workflowName: found.workflow_name }, how: 'rejoined' };
}

/** An error of the start, in words: what happened and what to do. */
export function inWords(e: unknown, o: Pick<ChatOptions, 'url' | 'tokenSource' | 'workflow' | 'appId'>): string {
  if (e instanceof ChatStartError) return e.message;
  if (e instanceof TesseraHttpError) {
    const said = `${e.status} ${e.code}: ${e.message}`;
    if (e.status === 401)
      return `the gateway refused the token (${said}). ${o.tokenSource === 'development' ? 'Is JWT_SECRET the one the services run with?' : 'It may have expired: npm start prints a new one, or unset TOKEN to use the development token.'}`;
    if (e.status === 403) return `not allowed (${said}): the token does not allow app ${o.appId} or this chat`;
    if (e.status === 404) return `not found (${said})${o.workflow ? `; the workflows are listed at ${o.url}/api/workflows` : ''}`;
    if (e.status === 429) return `rate limited (${said}); try again in a minute`;
    return `the platform answered ${said}`;
  }
  const cause = (e as { cause?: { code?: string } })?.cause?.code ?? (e as { code?: string })?.code;
  if (cause === 'ECONNREFUSED' || cause === 'ENOTFOUND' || cause === 'EAI_AGAIN' || cause === 'ECONNRESET')
    return `cannot reach the gateway at ${o.url} (${cause}): is npm start running? (--url names another one)`;
  if (e instanceof TypeError && e.message === 'fetch failed') return `cannot reach the gateway at ${o.url} (${(e.cause as Error | undefined)?.message ?? 'fetch failed'})`;
  return e instanceof Error ? e.message : String(e);
}
