import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { ChatId, SafeText, type TimelineDataOf } from '@tessera/contracts';
import { HttpError, type Principal } from '@tessera/kit';
import { z } from 'zod';
import { followTimeline } from '../bus/follow';
import { ownedChat } from '../routes/access';
import type { RuntimeServices } from '../services';
import type { ChatRow } from '../store/chats';
import { InputRefused } from '../turns/chat-inputs';

/** What a tool call takes: the user's message, and the chat to continue (none: a new chat). */
const ToolInput = {
  message: SafeText.min(1).max(32_000).describe("The user's message: the turn's input"),
  chat_id: ChatId.optional().describe('A chat of yours (from an earlier call) to continue; omitted: a new chat'),
};

/** How a tool call takes part in cancellation across instances (routes.ts, calls.ts). */
export interface CallScope {
  /** The call's chat is known and its turn about to start; true when the call was cancelled already. */
  begin(requestId: RequestId, chat: ChatRow): Promise<boolean>;
  /** The call's turn ended stopped: was that a cancel of this call that reached another instance? */
  cancelledElsewhere(requestId: RequestId): Promise<boolean>;
  /** Ends the call as cancelled: no answer is sent. */
  dropAnswer(requestId: RequestId): void;
  end(requestId: RequestId): Promise<void>;
}

/**
 * An MCP server for one request of a session: every workflow is a tool; a call is one turn of a
 * chat of the token's user in the path's app, answered with the turn's reply text.
 */
export function mcpServerFor(s: RuntimeServices, principal: Principal, appId: string, scope: CallScope): McpServer {
  const server = new McpServer({ name: 'tessera-runtime', version: '0.1.0' }, { capabilities: { tools: {} } });
  for (const w of s.workflows.values()) {
    server.registerTool(
      w.name,
      {
        title: w.name,
        description: `${w.description || `The "${w.name}" workflow`} — one turn: your message in, the agents' reply out. Pass chat_id (from structuredContent of an earlier call) to continue that chat.`,
        inputSchema: ToolInput,
        outputSchema: { chat_id: z.string(), status: z.string(), reply: z.string() },
      },
      async (args, extra): Promise<CallToolResult> => {
        let chat: ChatRow;
        try {
          chat = args.chat_id ? await ownedChat(s.chats, principal, args.chat_id, appId) : await newChat(s, principal, appId, w.name);
        } catch (err) {
          if (err instanceof HttpError) return failure(err.message);
          throw err;
        }
        if (chat.workflowName !== w.name) return failure(`chat "${chat.id}" runs workflow "${chat.workflowName}", not "${w.name}"`);
        const progressToken = extra._meta?.progressToken;
        try {
          if (await scope.begin(extra.requestId, chat)) {
            scope.dropAnswer(extra.requestId);
            return failure('cancelled');
          }
          const base = await s.timeline.lastIndex(chat.id);
          let input;
          try {
            ({ input } = await s.chatInputs.submitMessage(chat, args.message, `mcp:${randomUUID()}`));
          } catch (err) {
            // Refused (the chat busy under the workflow's `reject`, too many messages): a tool error naming the code.
            if (err instanceof InputRefused) return failure(`${err.code}: ${err.message}`);
            throw err;
          }
          const stop = () => void s.feed.publishControl({ action: 'stop', session_id: chat.id, app_id: chat.appId, requested_by: principal.sub }).catch(() => undefined);
          extra.signal.addEventListener('abort', stop, { once: true });
          // A cancel that came while the message was being submitted.
          if (extra.signal.aborted) stop();
          let progress = 0;
          const outcome = await followTurn(s, chat.id, base, input.id, extra.signal, async (delta) => {
            if (progressToken === undefined) return;
            await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: ++progress, message: delta } }).catch(() => undefined);
          });
          extra.signal.removeEventListener('abort', stop);
          // Stopped by this call's cancel on another instance: no answer, as for a cancel received here.
          if (outcome.status === 'stopped' && (await scope.cancelledElsewhere(extra.requestId))) scope.dropAnswer(extra.requestId);
          const structuredContent = { chat_id: chat.id, status: outcome.status, reply: outcome.reply };
          // A failed turn says why, after what it said before failing (a spent budget stops a turn between calls).
          const failed = outcome.status === 'failed' ? `the turn failed: ${outcome.reason ?? 'no reason given'}` : null;
          const text = failed ? [outcome.reply, failed].filter(Boolean).join('\n\n') : outcome.reply || `(no reply; the turn ended ${outcome.status})`;
          return { content: [{ type: 'text', text }], structuredContent, isError: outcome.status === 'failed' };
        } finally {
          await scope.end(extra.requestId);
        }
      },
    );
  }
  return server;
}

function failure(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

async function newChat(s: RuntimeServices, p: Principal, appId: string, workflowName: string): Promise<ChatRow> {
  const { chat } = await s.starter.start({ appId, userId: p.sub, workflowName, backendContext: null, uiContext: null, clientRequestId: `mcp:${randomUUID()}` });
  return chat;
}

type RunStatus = TimelineDataOf<'chat.run_complete'>['status'];

/**
 * Reads the chat's timeline after `base` until the turn's `chat.run_complete` (the log is the
 * source; the live feed only says "read again"), handing each assistant text delta to `onText`.
 */
async function followTurn(
  s: Pick<RuntimeServices, 'feed' | 'timeline'>,
  chatId: string,
  base: number,
  turnId: string,
  signal: AbortSignal,
  onText: (delta: string) => Promise<void>,
): Promise<{ status: RunStatus | 'cancelled'; reason?: string; reply: string }> {
  const texts = new Map<string, string>();
  const reply = () => [...texts.values()].join('\n\n');
  for await (const e of followTimeline(s, chatId, base, signal)) {
    if (e.type === 'chat.text') {
      const d = e.data as TimelineDataOf<'chat.text'>;
      // Only this turn's messages (their ids start with its id): an earlier turn may still be speaking after the base.
      if (d.role !== 'assistant' || !d.delta || !d.message_id.startsWith(`${turnId}:`)) continue;
      texts.set(d.message_id, (texts.get(d.message_id) ?? '') + d.delta);
      await onText(d.delta);
    } else if (e.type === 'chat.run_complete') {
      const d = e.data as TimelineDataOf<'chat.run_complete'>;
      if (d.turn_id !== turnId) continue;
      return { status: d.status, reason: d.reason, reply: reply() };
    }
  }
  // Cancelled: the stop was published; the SDK sends no answer to a cancelled request.
  return { status: 'cancelled', reply: reply() };
}
