import { RunAgentInputSchema } from '@ag-ui/core/schemas';
import { AppId, ChatId, MultitaskStrategy, SafeJsonRecord, SafeText, WorkflowName, type RouteSpec } from '@tessera/contracts';
import type { Request, Response } from 'express';
import { assertOwner, BadRequest, NotFound, type Principal, type RouteInput } from '@tessera/kit';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { AguiStream } from '../agui/stream';
import { TimelineFollower } from '../bus/follow';
import { parseEventId, RunTranslator } from '../agui/translate';
import type { RuntimeRoutes, RuntimeServices } from '../services';
import { CHAT_COLUMNS, type ChatRow } from '../store/chats';
import { isOwnChat, ownedChat } from './access';

export const AGUI_PATH = '/api/agui/{app_id}/{workflow_name}';

/** The official RunAgentInput, with ids a chat can be named by. */
const RunBody = RunAgentInputSchema.extend({
  threadId: ChatId.describe('The chat: an existing chat of yours, or a new thread id (a chat is started for it and found by it again)'),
  runId: ChatId.describe('This run; posting it again (with Last-Event-ID to continue) reaches the same run'),
});

const runAgent = {
  method: 'post',
  path: AGUI_PATH,
  access: 'user',
  summary: 'Run a workflow as an AG-UI agent: RunAgentInput in, AG-UI events out (SSE)',
  description:
    "AG-UI (docs.ag-ui.com) over a Tessera chat: `threadId` is the chat (a new id starts a chat for the token's user in the path's app; so does the id of another user's or app's chat, which stays theirs: to a caller it is an unused id). " +
    "The last `messages` entry, when it is the user's, is the run's message; `resume` answers the interrupts (UI tools awaiting an answer) the previous run finished with. " +
    "`forwardedProps.multitask_strategy` (enqueue, reject, interrupt, rollback; default: the workflow's) says what the message does while the thread's previous run still runs: `reject` is a 409 CHAT_BUSY, `interrupt`/`rollback` finish that run with the cancelled outcome. " +
    'Every SSE event has an `id`; posting the same body again with `Last-Event-ID` continues exactly after it, on any instance. Stop a run with `POST /api/chats/{app_id}/{chat_id}/stop`: it finishes with the `cancelled` outcome.',
  tags: ['agui'],
  params: z.object({ app_id: AppId, workflow_name: WorkflowName }),
  body: RunBody,
  responses: {
    200: { description: 'text/event-stream of AG-UI events (RUN_STARTED … RUN_FINISHED or RUN_ERROR), each with an id' },
    400: { description: 'a field is invalid (named), or nothing to run' },
    404: { description: 'no such workflow, chat or run (or not yours)' },
  },
} as const satisfies RouteSpec;

type RunInput = z.infer<typeof RunBody>;

const stopRun = {
  method: 'post',
  path: `${AGUI_PATH}/stop`,
  access: 'owner',
  summary: "Stop the thread's running run: its stream finishes with RUN_FINISHED and the cancelled outcome",
  description: 'AG-UI has no stop message (a client only stops listening); this is the one a frontend calls to stop the agent itself.',
  tags: ['agui'],
  params: z.object({ app_id: AppId, workflow_name: WorkflowName }),
  body: z.object({ threadId: ChatId.describe('The thread (chat) whose run to stop') }),
  responses: { 202: { description: 'stop requested' }, 404: { description: 'no such thread (or not yours)' } },
} as const satisfies RouteSpec;

export const aguiRoutes: RouteSpec[] = [runAgent, stopRun];

const RUN_TTL_S = 7 * 24 * 3600;
/** What the database can store of a message and of an interrupt's id (made once: a schema costs more to build than to check). */
const MessageText = SafeText.max(32_000);
const InterruptId = SafeText.min(1).max(256);

/**
 * The chats this instance found for threads lately, by (user, app, workflow, thread id): a
 * frontend posts every run of a thread, and a thread's chat is the same chat for good. A hit saves
 * the run a read of the chat's row (its whole state with it), as a chat socket reads its row once
 * for all the messages it sends. What a run needs fresh comes from its input's insert: where the
 * log was (the run's base). Entries live THREAD_TTL_MS: a chat whose workflow a socket switched
 * meanwhile is seen switched within that.
 */
const THREAD_TTL_MS = 60_000;
const THREADS_MAX = 10_000;

/** A thread's chat as the cache keeps it: without its conversation state, context and artifact (a new message's run needs none of them). */
const identityOf = (chat: ChatRow): ChatRow => ({ ...chat, state: {}, context: {}, lastArtifact: null });

interface RunRecord {
  base: number;
  turnId: string | null;
}

/** A run as this request found or started it; `heardLive`: its input was made after the stream subscribed, so all it causes arrives live. */
interface Run extends RunRecord {
  heardLive: boolean;
}

export function aguiRoutesOf(routes: RuntimeRoutes, s: RuntimeServices): void {
  const runKey = (chatId: string, runId: string) => `${s.config.BULL_PREFIX}:agui:run:${chatId}:${runId}`;
  const threads = new LRUCache<string, ChatRow>({ max: THREADS_MAX, ttl: THREAD_TTL_MS });

  // A run is an HTTP request: served direct, on node's objects, without express's work per request.
  routes.route(
    runAgent,
    (input, req, res) => {
      // AG-UI posts the whole thread on every run: it is let go once the run is found or started,
      // not held (twice: as parsed and as checked) while the run streams.
      req.body = undefined;
      return openRun(input, req, res).then(async ({ follower, stream }) => {
        try {
          await stream.run();
        } finally {
          await follower.close();
        }
      });
    },
    { direct: true },
  );

  /** The run a post names (found, or started by its input), its follower subscribed, its stream ready to send. */
  async function openRun({ params, body }: RouteInput<typeof runAgent>, req: Request, res: Response): Promise<{ follower: TimelineFollower; stream: AguiStream }> {
    const principal = req.principal as Principal;
    assertOwner(principal, principal.sub, params.app_id);
    const workflow = s.workflows.get(params.workflow_name);
    if (!workflow) throw new NotFound(`no workflow named "${params.workflow_name}"`);
    const lastEventHeader = req.header('last-event-id');
    const lastEvent = lastEventHeader === undefined ? null : parseEventId(lastEventHeader);
    if (lastEventHeader !== undefined && !lastEvent) throw new BadRequest(`invalid Last-Event-ID "${lastEventHeader.slice(0, 64)}": expected an id this stream sent, such as 12:0`);

    // A run of a user message (the common case) is found again by its input (its client message
    // id is the run id): no run record. A new one uses the thread's chat as this instance found it
    // lately; a re-post of it finds its input a duplicate.
    const messageRun = !body.resume?.length && body.messages.at(-1)?.role === 'user';
    const threadKey = [principal.sub, params.app_id, params.workflow_name, body.threadId].join('\n');
    let chat = messageRun && !lastEvent ? threads.get(threadKey) : undefined;
    if (!chat) {
      // A reconnect never starts a chat: a thread it does not find has no such run.
      const found = lastEvent ? await ownThread(s, principal, params.app_id, params.workflow_name, body.threadId) : await threadChat(s, principal, params.app_id, params.workflow_name, body.threadId);
      if (!found) throw new NotFound(`no run "${body.runId}" on thread "${body.threadId}"`);
      chat = found;
      threads.set(threadKey, identityOf(chat));
    }
    // Subscribed before the run's input is made: what the input causes is heard live, and a new
    // run's stream starts without reading the log (AguiStream).
    const follower = await TimelineFollower.subscribe(s, chat.id);
    try {
      let run: Run;
      if (messageRun) run = lastEvent ? await messageRunOf(s, chat, body) : await startRun(s, chat, null, body, strategyOf(body.forwardedProps));
      else {
        // A resume or a greeting: the run record names its base and turn, on any instance.
        const stored = await s.redis.get(runKey(chat.id, body.runId));
        if (stored) run = { ...(JSON.parse(stored) as RunRecord), heardLive: false };
        else if (lastEvent) throw new NotFound(`no run "${body.runId}" on thread "${body.threadId}"`);
        else {
          run = await startRun(s, chat, workflow.initiator === 'agent' ? workflow : null, body, strategyOf(body.forwardedProps));
          // The first post of a run id wins; a racing duplicate streams the same run.
          const set = await s.redis.set(runKey(chat.id, body.runId), JSON.stringify({ base: run.base, turnId: run.turnId }), 'EX', RUN_TTL_S, 'NX');
          if (set !== 'OK') run = { ...(JSON.parse((await s.redis.get(runKey(chat.id, body.runId))) as string) as RunRecord), heardLive: false };
        }
      }
      const answers = (body.resume ?? []).map((r) => r.interruptId);
      const translator = new RunTranslator(body.threadId, body.runId, run.base, run.turnId, chat.workflowName, answers);
      return { follower, stream: new AguiStream(s, chat.id, follower, translator, lastEvent, res, { readLogFirst: !run.heardLive }) };
    } catch (err) {
      await follower.close();
      throw err;
    }
  }

  routes.route(stopRun, async ({ params, body }, req, res) => {
    const principal = req.principal as Principal;
    const chat = await ownThread(s, principal, params.app_id, params.workflow_name, body.threadId);
    if (!chat) throw new NotFound(`no thread "${body.threadId}"`);
    await s.feed.publishControl({ action: 'stop', session_id: chat.id, app_id: chat.appId, requested_by: principal.sub });
    res.status(202).json({ accepted: true, threadId: body.threadId });
  });
}

/**
 * The chat a thread id names, if there is one: the caller's chat of that id, or the caller's chat
 * started for that thread id. A chat of that id that is another user's or another app's is not
 * there for the caller: the id is then the caller's own thread id like any other (a new one starts
 * a chat), so what another tenant sees of an id is what it sees of an unused one. One statement
 * reads both (every run starts here: a frontend's own thread id is the common case, found in one read).
 */
async function findThread(s: RuntimeServices, p: Principal, appId: string, workflowName: string, threadId: string): Promise<ChatRow | null> {
  assertOwner(p, p.sub, appId);
  const r = await s.db.pool.query<ChatRow>({
    name: 'agui-find-thread',
    text: `SELECT ${CHAT_COLUMNS} FROM chats WHERE id = $1 OR (app_id = $2 AND user_id = $3 AND workflow_name = $4 AND client_request_id = $5)`,
    values: [threadId, appId, p.sub, workflowName, `agui:${threadId}`],
  });
  const byId = r.rows.find((c) => c.id === threadId);
  if (byId && isOwnChat(p, byId, appId)) {
    // A chat of the caller's of that id: the chat access rule decides (it reads the row again; rare for a frontend).
    const chat = await ownedChat(s.chats, p, threadId, appId);
    if (chat.workflowName !== workflowName) throw new BadRequest(`chat "${chat.id}" runs workflow "${chat.workflowName}", not "${workflowName}"`);
    return chat;
  }
  return r.rows.find((c) => c !== byId) ?? null;
}

/** findThread for a caller that only reads a thread (a reconnect, a stop): a chat gone between findThread's two reads is one that does not exist. */
function ownThread(...args: Parameters<typeof findThread>): Promise<ChatRow | null> {
  return findThread(...args).catch((err: unknown) => {
    if (err instanceof NotFound) return null;
    throw err;
  });
}

/** The chat a thread id names; a new thread id starts one for the caller. */
async function threadChat(s: RuntimeServices, p: Principal, appId: string, workflowName: string, threadId: string): Promise<ChatRow> {
  const found = await findThread(s, p, appId, workflowName, threadId);
  if (found) return found;
  const { chat } = await s.starter.start({
    appId,
    userId: p.sub,
    workflowName,
    backendContext: null,
    uiContext: null,
    clientRequestId: `agui:${threadId}`,
  });
  return chat;
}

/**
 * A user message's run posted again with Last-Event-ID: its input (client message id `agui:<runId>`)
 * names its turn, and the log where that turn opens (or its end so far, while it waits its turn) is
 * where to read from. Its RUN_STARTED is not sent again (the client holds an event after it), so
 * this base needs to be only at or before the turn's opening, not the first post's.
 */
async function messageRunOf(s: RuntimeServices, chat: ChatRow, { threadId, runId }: RunInput): Promise<Run> {
  const input = await s.inputs.byClientId(chat.id, `agui:${runId}`);
  if (!input) throw new NotFound(`no run "${runId}" on thread "${threadId}"`);
  return { base: await s.timeline.indexBefore(chat.id, `${input.id}:user`), turnId: input.id, heardLive: false };
}

/** What the run's input asks for: answers to interrupts, a user message, or (a new chat of an agent that speaks first) the greeting. */
async function startRun(
  s: RuntimeServices,
  chat: ChatRow,
  greeter: Parameters<RuntimeServices['chatInputs']['startGreetingOnce']>[1] | null,
  { messages, resume, runId }: RunInput,
  strategy: MultitaskStrategy | undefined,
): Promise<Run> {
  // Where the log was when the chat was read (its row carries the last index): the run's events come after.
  const base = chat.lastIndex;
  if (resume?.length) {
    let turnId: string | null = null;
    for (const [i, r] of resume.entries()) {
      const id = storable(InterruptId, r.interruptId, `resume.${i}.interruptId`);
      const payload = r.status === 'cancelled' ? { cancelled: true } : r.payload;
      if (payload === null || typeof payload !== 'object' || Array.isArray(payload))
        throw new BadRequest(`invalid body: resume.${i}.payload: a resolved interrupt's answer must be a JSON object`);
      const { input } = await s.chatInputs.respondToolCall(chat, id, storable(SafeJsonRecord, payload, `resume.${i}.payload`), () => undefined);
      turnId = input.id;
    }
    return { base, turnId, heardLive: false };
  }
  const last = messages.at(-1);
  if (last?.role === 'user') {
    const text = typeof last.content === 'string' ? last.content : last.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
    if (!text.trim()) throw new BadRequest('invalid body: messages: the last user message has no text');
    const at = `messages.${messages.length - 1}.content`;
    // The run's base is where the log was when its input was made (the chat's row may be one this
    // instance read runs ago). With the timeline's tail the newest index may be in Redis alone: it
    // is read before the input exists, so nothing of the run's own turn can be in it yet.
    const top = (await s.timeline.tail?.top(chat.id)) ?? 0;
    const { input, duplicate, lastIndex } = await s.chatInputs.submitMessage(chat, storable(MessageText, text, at), `agui:${runId}`, undefined, strategy);
    // A run posted again: from just before its turn's opening, wherever the log is now.
    if (duplicate || lastIndex === undefined) return { base: await s.timeline.indexBefore(chat.id, `${input.id}:user`), turnId: input.id, heardLive: false };
    return { base: Math.max(lastIndex, top), turnId: input.id, heardLive: true };
  }
  if (greeter && (await s.chatInputs.startGreetingOnce(chat, greeter))) return { base, turnId: null, heardLive: false };
  throw new BadRequest('invalid body: nothing to run: the last message is not a user message and there is no resume');
}

/** `forwardedProps.multitask_strategy`, AG-UI's place for what a server takes beyond the protocol. */
function strategyOf(forwardedProps: unknown): MultitaskStrategy | undefined {
  if (forwardedProps === null || typeof forwardedProps !== 'object' || !('multitask_strategy' in forwardedProps)) return undefined;
  return storable(MultitaskStrategy, forwardedProps.multitask_strategy, 'forwardedProps.multitask_strategy');
}

/** What the official schema lets through but the database cannot store (NUL, lone surrogates, too deep or long): a 400 naming the field. */
function storable<T extends z.ZodType>(schema: T, value: unknown, at: string): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const path = [at, ...issue.path.map(String)].join('.');
  throw new BadRequest(`invalid body: ${path}: ${issue.message}`, { issues: [{ path: `body.${path}`, message: issue.message }] });
}
