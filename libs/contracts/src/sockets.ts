import { z } from 'zod';
import type { SocketCredential, SocketMessage, SocketSpec } from './asyncapi';
import { AppId, ChatId, UserId, WorkflowName } from './common/ids';
import * as bridge from './bridge';
import * as mission from './mission';
import * as observability from './observability';
import { ClientMessage, ControlData, ServerEnvelope, TimelineData, WsErrorCode } from './runtime/ws';

/**
 * The four WebSocket protocols as clients reach them through the gateway, from the same schemas
 * the services parse and write with. `buildAsyncApi` turns them into the gateway's `/asyncapi.json`.
 */

/**
 * Where a platform token may be on a socket upgrade: the kit's `TOKEN_PLACES.ws`, in its order
 * (the gateway's test holds the two together).
 */
export const PLATFORM_TOKEN_PLACES: SocketCredential[] = [
  { in: 'query', name: 'access_token', description: 'The platform token (document 003: `?access_token=<jwt>`).' },
  { in: 'query', name: 'token', description: 'The platform token (document 002: `?token=<jwt>`).' },
  { in: 'header', name: 'authorization', description: '`Authorization: Bearer <jwt>`, for clients that can set headers on an upgrade.' },
  { in: 'cookie', name: 'access_token', description: 'The platform token in a cookie (same-origin pages: the Origin must be allowed).' },
  { in: 'cookie', name: 'token', description: 'The platform token in a cookie (document 002).' },
  { in: 'cookie', name: 'session', description: 'The platform token in a cookie (the name of the original services).' },
];

/** The close codes every Tessera socket may use (the kit's SocketHub); `maxPayload`: the service's WS_MAX_PAYLOAD default. */
const hubCloseCodes = (maxPayload: string): Record<number, string> => ({
  1001: 'the server is shutting down: reconnect (to another instance)',
  1008: 'refused: no or a bad credential, not yours, or too many messages too fast',
  1009: `a message larger than the service accepts (WS_MAX_PAYLOAD, ${maxPayload} by default)`,
  1011: 'the server failed; reconnect',
  1013: 'the client read too slowly (a slow consumer): reconnect and resume',
});

const HEARTBEAT =
  'Heartbeat: the server sends a WebSocket ping frame every WS_HEARTBEAT_MS (30 s by default) and drops a socket that did not answer the previous one (the client sees 1006); browsers and WebSocket libraries answer pings by themselves.';

const typed = (o: z.ZodObject): string => (o.shape.type as z.ZodLiteral<string>).value;

/* ------------------------------------------------------------------------------------------------
 * Document 003: the runtime's chat socket.
 * ---------------------------------------------------------------------------------------------- */

const RUNTIME_CLIENT_SUMMARIES: Record<string, string> = {
  'user.input.submit': "The user's message; starts a turn (acknowledged with `ack.input`).",
  tool_call_response: 'The answer to a `chat.tool_call` that awaits one.',
  'client.resume': 'Replay the timeline after the highest index the client has applied, then `chat.resume_boundary`.',
  'chat.switch_workflow': 'Switch the chat to another workflow.',
  'chat.enter_general_mode': 'Leave the workflow for general chat.',
  'chat.start_general_chat': 'Start a general chat.',
  'chat.start_workflow': 'Start a workflow in this chat.',
  'chat.start_workflow_batch': 'Start several workflows at once.',
};

const RUNTIME_CLIENT_EXAMPLES: Record<string, unknown[]> = {
  'user.input.submit': [{ type: 'user.input.submit', text: 'Plan a three-day trip to Lisbon', client_message_id: 'm-1' }],
  'client.resume': [{ type: 'client.resume', lastClientIndex: 41 }],
  tool_call_response: [{ type: 'tool_call_response', tool_call_id: 'evt_7f3c', response: { approved: true } }],
};

const runtimeSends: SocketMessage[] = (() => {
  const out: SocketMessage[] = [];
  const timeline = TimelineData as Record<string, z.ZodType>;
  const control = ControlData as Record<string, z.ZodType>;
  for (const name of new Set([...Object.keys(timeline), ...Object.keys(control)])) {
    const inTimeline = name in timeline;
    const inControl = name in control;
    const index = z.number().int().positive().describe("The event's place in the chat's timeline (what `client.resume` counts from)");
    out.push({
      name,
      summary: inTimeline ? `Timeline event \`${name}\`${inControl ? ' (or, without an index, a refusal of a client message)' : ''}` : `Control message \`${name}\` (not replayed, no index)`,
      schema: ServerEnvelope.omit({ index: true }).extend({
        type: z.literal(name),
        data: timeline[name] ?? control[name],
        timestamp: z.string().describe('ISO 8601'),
        ...(inTimeline && { index: inControl ? index.optional() : index }),
      }),
    });
  }
  return out;
})();

export const runtimeChatSocket: SocketSpec = {
  id: 'runtimeChat',
  address: '/ws/{workflow_name}/{app_id}/{chat_id}/{user_id}',
  title: 'Runtime chat',
  summary: 'One chat of document 003: its timeline, live, with resume and replay.',
  description: [
    'Open it with the chat that `POST /api/chats/{app_id}/{workflow_name}/start` (or the broker) returned; the token must be the path\'s user in the path\'s app.',
    'On connect the server sends `chat_meta`. Every server message is an envelope `{type, data, timestamp}`; timeline events also carry `index`, increasing per chat.',
    'After a reconnect, send `client.resume` first, with the highest index applied: the events after it are replayed, then `chat.resume_boundary`, then live ones. Live events start with the client\'s first message (any other message means "from `chat_meta.last_index`") or after a short grace period.',
    `A client message that cannot be handled gets \`chat.error\` with an \`error_code\` (${Object.values(WsErrorCode).join(', ')}); the socket stays open.`,
    HEARTBEAT,
  ].join('\n\n'),
  params: z.object({
    workflow_name: WorkflowName.describe('The workflow the chat runs (GET /api/workflows)'),
    app_id: AppId,
    chat_id: ChatId,
    user_id: UserId.describe("The chat's user: the token's subject"),
  }),
  credentials: PLATFORM_TOKEN_PLACES,
  closeCodes: { ...hubCloseCodes('256 KiB'), 1008: 'refused: no or a bad token, not your chat (another user or app, or no such chat), no such workflow; or too many messages too fast' },
  receives: ClientMessage.options.map((o) => ({ name: typed(o), summary: RUNTIME_CLIENT_SUMMARIES[typed(o)] ?? typed(o), schema: o, examples: RUNTIME_CLIENT_EXAMPLES[typed(o)] })),
  sends: runtimeSends,
  tags: ['chats'],
};

/* ------------------------------------------------------------------------------------------------
 * Document 001 §5: observability's live socket.
 * ---------------------------------------------------------------------------------------------- */

const OBS_SUMMARIES: Record<string, string> = {
  subscribe: "One session's events (`after`: the stored ones after that seq first), or `all: true` for every event of the token's apps.",
  unsubscribe: "Stop one session's events, or (`all: true`) the events of sessions not subscribed to.",
  ping: 'Answered with `pong`.',
  init: 'First message: the newest page of sessions the operator may see.',
  event: 'An event of a session.',
  session_updated: 'A session changed (status, metadata, modified_at).',
  session_deleted: 'A session was deleted.',
  subscribed: 'The subscription is in place; `last_seq` is the last stored event sent before it.',
  pong: 'The answer to `ping`.',
  error: 'A message that could not be handled (e.g. `AMBIGUOUS_SESSION`); the socket stays open.',
  events_dropped: 'The socket fell behind: events of sessions it did not subscribe to were skipped, named here by session and seq.',
};

export const observabilitySocket: SocketSpec = {
  id: 'observabilityLive',
  address: '/api/observability/ws',
  title: 'Observability live view',
  summary: "Document 001 §5: an operator's live view of the sessions and events of the token's apps.",
  description: [
    "An operator token (the role claim holding the operator role); what the socket shows is limited to the token's apps.",
    'On connect: `init`. Then `session_updated`, `session_deleted` and `event` for every session of the token\'s apps, until the client subscribes to a session, which narrows the socket to its subscriptions (`{"type":"subscribe","all":true}` widens it again).',
    'Subscribing with `after` replays the stored events after that seq, then `subscribed`, then live ones: nothing lost, nothing twice across a reconnect.',
    HEARTBEAT,
  ].join('\n\n'),
  credentials: PLATFORM_TOKEN_PLACES,
  query: observability.LiveQuery,
  closeCodes: { ...hubCloseCodes('64 KiB'), 1008: 'refused: no or a bad token, or not an operator, or a bad `events`; or too many messages too fast', 1011: 'delivery failed: reconnect and subscribe with `after`' },
  receives: observability.ObsClientMessage.options.map((o) => ({
    name: typed(o),
    summary: OBS_SUMMARIES[typed(o)],
    schema: o,
    ...(typed(o) === 'subscribe' && { examples: [{ type: 'subscribe', session_id: 'sess-42', after: 17 }, { type: 'subscribe', all: true }] }),
  })),
  sends: observability.ObsServerMessage.options.map((o) => ({ name: typed(o), summary: OBS_SUMMARIES[typed(o)], schema: o })),
  tags: ['sessions'],
};

/* ------------------------------------------------------------------------------------------------
 * Document 002: Mission Ally.
 * ---------------------------------------------------------------------------------------------- */

const MISSION_SUMMARIES: Record<string, string> = {
  user_message: "The learner's message to the tutor.",
  ping: 'Keepalive (document 002: every 30 s); answered with `pong`.',
  connected: 'The session is open.',
  historical_messages: 'The conversation so far, oldest first, sent after `connected` (an empty list for a new conversation).',
  agent_processing_start: 'The tutor started on a message: show a typing indicator.',
  agent_message: "The tutor's answer (it may come in several messages).",
  agent_processing_end: 'The tutor is done with the message: hide the typing indicator.',
  agent_handover: 'Another agent takes over the conversation.',
  checkpoint_update: 'A checkpoint was completed: the completed ones and the progress in percent.',
  session_closed: 'The mission is complete; the server then closes with 1000.',
  pong: 'The answer to `ping`.',
  error: 'A refusal (followed by close 1008) or a message that could not be handled.',
};

export const missionAllySocket: SocketSpec = {
  id: 'missionAlly',
  address: '/api/v1/mission-ally/ws',
  title: 'Mission Ally',
  summary: "Document 002: a tutor walking a learner through a mission's checkpoints.",
  description: [
    'Open it with `?mission_id=` of a mission the learner is enrolled in, and a token (document 002: `?token=`, the `token` cookie, or `Authorization: Bearer`).',
    'Messages are flat objects with a `type` (not document 003\'s envelopes). On connect: `connected`, then `historical_messages` (an empty list for a new conversation).',
    'A refusal is `{"type":"error","message"}` followed by close 1008 (token, mission, enrollment, a mission already completed); a failure the same with 1011.',
    HEARTBEAT,
  ].join('\n\n'),
  query: z.object({ mission_id: mission.MissionId.describe('The mission (among the token\'s apps) the learner is enrolled in') }),
  credentials: [
    { in: 'query', name: 'token', description: 'The token (document 002: `?token=<jwt>`).' },
    { in: 'cookie', name: 'token', description: 'The token in the `token` cookie (document 002).' },
    { in: 'cookie', name: 'session', description: 'The token in the `session` cookie.' },
    { in: 'header', name: 'authorization', description: '`Authorization: Bearer <jwt>`.' },
  ],
  closeCodes: {
    1000: 'normal closure: the mission is complete (after `session_closed`)',
    ...hubCloseCodes('256 KiB'),
    1008: 'policy violation: authentication failed, no such mission, not enrolled, mission already completed (after an `error` message); or too many messages too fast',
    1011: 'internal error (after an `error` message)',
  },
  receives: mission.ClientMessage.options.map((o) => ({
    name: typed(o),
    summary: MISSION_SUMMARIES[typed(o)],
    schema: o,
    ...(typed(o) === 'user_message' && { examples: [{ type: 'user_message', message: 'What is the first checkpoint about?' }] }),
  })),
  sends: mission.ServerMessage.options.map((o) => ({ name: typed(o), summary: MISSION_SUMMARIES[typed(o)], schema: o })),
  tags: ['mission-ally'],
};

/* ------------------------------------------------------------------------------------------------
 * Document 004: the bridge's session socket.
 * ---------------------------------------------------------------------------------------------- */

/** Each envelope type's payload, as the bridge writes it. */
const BRIDGE_PAYLOADS: Record<bridge.SessionEnvelopeType, { summary: string; payload: z.ZodType }> = {
  'session.snapshot': {
    summary: "First message: the session's state.",
    payload: z.object({ sessionInfo: bridge.SessionInfo, opencodeUrl: z.string(), opencodeSessionId: z.string().nullable(), model: z.string().nullable(), scadaUrl: z.string() }),
  },
  'session.info.updated': { summary: "The session's info changed (PUT .../info).", payload: bridge.SessionInfo },
  'session.event': {
    summary: 'A published event (POST .../events), an agent server event (`source: "opencode"`), or a `hub.request` awaiting a `hub.response`.',
    payload: z.object({ type: z.string(), payload: z.unknown(), source: z.string().optional() }),
  },
  'session.closed': { summary: 'The session closed; the server then closes the socket with 4000.', payload: z.object({ reason: bridge.CloseReason }) },
  pong: { summary: 'The answer to `ping`.', payload: z.null() },
  error: {
    summary: 'A message that could not be handled (`BAD_MESSAGE`, `RATE_LIMITED`, or a `hub.response` refused); the socket stays open.',
    payload: z.object({ code: z.string(), message: z.string(), requestId: z.string().optional() }),
  },
};

export const bridgeSessionSocket: SocketSpec = {
  id: 'bridgeSession',
  address: '/api/bridge/session/{sessionId}/ws',
  title: 'Bridge session',
  summary: "Document 004: one bridge session's events, with a snapshot first and request/response prompts.",
  description: [
    'Open the `websocketUrl` that `POST /api/bridge/session/bootstrap` returned as it is: it carries the session\'s own token (`?sessionToken=`). The owner\'s platform token or the service key work too.',
    'Every server message is an envelope `{type, sessionId, timestamp, payload}`; the first is `session.snapshot`.',
    'A `session.event` whose payload type is `hub.request` awaits an answer: send `hub.response` with its `requestId` (or POST .../events/request/{requestId}/response).',
    HEARTBEAT,
  ].join('\n\n'),
  params: z.object({ sessionId: bridge.SessionParams.shape.sessionId.describe('The session `bootstrap` returned') }),
  credentials: [
    { in: 'query', name: 'sessionToken', description: "The session's own token, as `websocketUrl` carries it." },
    { in: 'header', name: 'x-session-token', description: "The session's own token in a header." },
    ...PLATFORM_TOKEN_PLACES.map((p) => ({ ...p, description: `${p.description} The session owner's, or an operator's of its app.` })),
  ],
  closeCodes: {
    ...hubCloseCodes('256 KiB'),
    [bridge.SessionCloseCode.SessionClosed]: 'the session closed (after `session.closed`)',
    [bridge.SessionCloseCode.Unauthorized]: 'no credential, or a bad one',
    [bridge.SessionCloseCode.UnknownSession]: 'no such session, or not the caller\'s',
  },
  receives: bridge.SessionClientMessage.options.map((o) => ({
    name: typed(o),
    summary: typed(o) === 'ping' ? 'Answered with `pong`.' : 'The answer to a `hub.request` (`session.event`).',
    schema: o,
    ...(typed(o) === 'hub.response' && { examples: [{ type: 'hub.response', requestId: 'req-1', response: { answer: 'yes' } }] }),
  })),
  sends: bridge.SessionEnvelopeType.options.map((type) => ({
    name: type,
    summary: BRIDGE_PAYLOADS[type].summary,
    schema: z.object({ type: z.literal(type), sessionId: z.string(), timestamp: z.string().describe('ISO 8601'), payload: BRIDGE_PAYLOADS[type].payload }),
  })),
  tags: ['bridge'],
};

/** Every socket protocol, in the order of the gateway's routing table. */
export const SOCKETS: SocketSpec[] = [runtimeChatSocket, missionAllySocket, observabilitySocket, bridgeSessionSocket];
