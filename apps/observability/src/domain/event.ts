import type { observability } from '@tessera/contracts';
import type { CallUsage } from '@tessera/kit';

type SessionSource = observability.SessionSource;

/**
 * One event on its way into storage, whatever it came from (a runtime chat on the queue, an
 * outside agent's `POST /events`, an OpenTelemetry span): every ingest path produces these and
 * hands them to the one Ingestor, so sessions, rollups, idempotency and live delivery have one
 * implementation.
 */
export interface NormalizedEvent {
  sessionId: string;
  /** `session_start`, `pre_tool`, `post_tool`, `session_stop`, `message`, `chat.text`, … kept as given. */
  eventType: string;
  /** Idempotency key within the session (the client's event_id, `rt:<index>` for runtime events, the span id); null: always stored. */
  eventId: string | null;
  timestamp: Date;
  source: SessionSource;
  appId: string | null;
  userId: string | null;
  agentName: string | null;
  workflow: string | null;
  projectDir: string | null;
  sessionName: string | null;
  /** The model a model call used (OpenTelemetry gen_ai.response.model, else gen_ai.request.model), when the event is one. */
  model?: string | null;
  toolName: string | null;
  toolInput?: unknown;
  toolOutput?: unknown;
  error: string | null;
  exitCode: number | null;
  reason: string | null;
  role: string | null;
  content: Record<string, unknown>[] | null;
  /**
   * The text of a user's message this event carries (an OpenTelemetry span: its first user input
   * message), if any: the first one a session stores becomes its title.
   */
  userText?: string | null;
  /**
   * Tokens of the model call this event reports (added to the session's rollup and the usage
   * rollups once, however often it is delivered); `input` counts every input token, the cache's
   * reads and writes among them. The model, when the event names it here, prices the call.
   */
  usage: CallUsage | null;
  /** OpenTelemetry GenAI attributes (gen_ai.conversation.id, gen_ai.agent.name, gen_ai.operation.name, gen_ai.usage.*) and anything else worth keeping. */
  attributes: Record<string, unknown>;
  /** The producer's own order of the event in the session (a runtime chat's timeline index, 1, 2, …), when it has one. */
  sourceIndex?: number;
  /** What the event does to the session's status, if anything (session_start → running, session_stop → finished, …). */
  status?: observability.SessionStatus;
}
