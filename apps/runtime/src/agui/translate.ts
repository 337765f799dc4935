import { EventType, type Event, type Interrupt } from '@ag-ui/core';
import type { TimelineDataOf, TimelineEvent, TimelineType } from '@tessera/contracts';

/** One AG-UI event and its SSE id: `<timeline index>:<n>`, the n-th event made of that timeline event. */
export interface Positioned {
  id: string;
  event: Event;
}

/** An SSE id as a position (timeline index, n), or null when it is not one this adapter wrote. */
export function parseEventId(id: string): [number, number] | null {
  const m = /^(\d{1,15}):(\d{1,3})$/.exec(id);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function isAfter(id: string, last: [number, number] | null): boolean {
  if (!last) return true;
  const [i, n] = parseEventId(id) as [number, number];
  return i > last[0] || (i === last[0] && n > last[1]);
}

const data = <T extends TimelineType>(e: TimelineEvent, _t: T) => e.data as TimelineDataOf<T>;

/**
 * One AG-UI run made of a chat's timeline: from its turn's opening event (the user's message, or
 * the answer to one of the interrupts it resumes) after `base` (the chat's last index when the run
 * began) up to the `chat.run_complete` of the run's turn. What comes between `base` and that
 * opening is another turn's: a message sent while an earlier run streams waits for that run's
 * turn to end. A pure state machine over the timeline, so the same events always make the same
 * AG-UI events with the same ids: a reconnect (on any instance) reads the run's events again from
 * `base` and sends those after its Last-Event-ID.
 */
export class RunTranslator {
  /** Text messages started and not yet ended. */
  private readonly open = new Set<string>();
  private step: string | null = null;
  private readonly interrupts: Interrupt[] = [];
  private agent: string | null = null;
  /** The code of the run's last `chat.error` (BUDGET_EXCEEDED, MODEL_ERROR…): its RUN_ERROR carries it. */
  private errorCode: string | null = null;
  done = false;
  /** The run's turn has opened: what follows is the run's (a greeting, with no input to open it, is from `base` on). */
  private opened: boolean;

  constructor(
    private readonly threadId: string,
    private readonly runId: string,
    readonly base: number,
    /** The turn (input id) whose run_complete ends the run; null: the first run_complete after base. */
    private readonly turnId: string | null,
    private readonly workflowName: string,
    /** The interrupts (tool call event ids) the run's `resume` answers: their completion opens it. */
    private readonly answers: readonly string[] = [],
  ) {
    this.opened = turnId === null;
  }

  start(): Positioned[] {
    return [{ id: `${this.base}:0`, event: { type: EventType.RUN_STARTED, threadId: this.threadId, runId: this.runId } }];
  }

  map(e: TimelineEvent): Positioned[] {
    if (this.done || e.index <= this.base) return [];
    if (!this.opened) {
      if (!this.opens(e)) return [];
      this.opened = true;
    }
    const out: Event[] = [];
    switch (e.type) {
      case 'chat.text': {
        const d = data(e, 'chat.text');
        // The user's own message is in the client's RunAgentInput already.
        if (d.role !== 'assistant' || !this.mine(d.message_id)) break;
        this.enterStep(d.agent, out);
        if (!this.open.has(d.message_id)) {
          this.open.add(d.message_id);
          out.push({ type: EventType.TEXT_MESSAGE_START, messageId: d.message_id, role: 'assistant' });
        }
        if (d.delta) out.push({ type: EventType.TEXT_MESSAGE_CONTENT, messageId: d.message_id, delta: d.delta });
        if (d.done) {
          this.open.delete(d.message_id);
          out.push({ type: EventType.TEXT_MESSAGE_END, messageId: d.message_id });
        }
        break;
      }
      case 'chat.tool_call': {
        const d = data(e, 'chat.tool_call');
        if (!this.mine(d.event_id)) break;
        this.closeMessages(out);
        this.enterStep(d.agent, out);
        out.push({ type: EventType.TOOL_CALL_START, toolCallId: d.tool_call_id, toolCallName: d.tool_name });
        out.push({ type: EventType.TOOL_CALL_ARGS, toolCallId: d.tool_call_id, delta: JSON.stringify(d.payload) });
        out.push({ type: EventType.TOOL_CALL_END, toolCallId: d.tool_call_id });
        if (d.awaiting_response) {
          const question = typeof d.payload.question === 'string' ? d.payload.question : undefined;
          this.interrupts.push({
            id: d.event_id,
            reason: 'tool_call',
            toolCallId: d.tool_call_id,
            ...(question !== undefined && { message: question }),
            metadata: { tool_name: d.tool_name, component: d.component, display: d.display },
          });
        }
        break;
      }
      case 'chat.tool_call_complete': {
        const d = data(e, 'chat.tool_call_complete');
        out.push({ type: EventType.TOOL_CALL_RESULT, messageId: `${d.event_id}:result`, toolCallId: d.tool_call_id, role: 'tool', content: JSON.stringify(d.response) });
        break;
      }
      case 'chat.tool_response': {
        // A backend tool the agent ran: its call and its result, in one.
        const d = data(e, 'chat.tool_response');
        this.closeMessages(out);
        this.enterStep(d.agent, out);
        out.push({ type: EventType.TOOL_CALL_START, toolCallId: d.tool_call_id, toolCallName: d.tool_name });
        out.push({ type: EventType.TOOL_CALL_END, toolCallId: d.tool_call_id });
        out.push({ type: EventType.TOOL_CALL_RESULT, messageId: `${d.tool_call_id}:result`, toolCallId: d.tool_call_id, role: 'tool', content: d.content });
        break;
      }
      case 'chat.custom_event': {
        const d = data(e, 'chat.custom_event');
        out.push({ type: EventType.CUSTOM, name: d.kind, value: d.payload });
        break;
      }
      case 'chat.error':
        this.errorCode = data(e, 'chat.error').error_code ?? null;
        break;
      case 'chat.run_complete': {
        const d = data(e, 'chat.run_complete');
        if (this.turnId !== null && d.turn_id !== this.turnId) break;
        this.closeMessages(out);
        if (this.step !== null) out.push({ type: EventType.STEP_FINISHED, stepName: this.step });
        this.step = null;
        out.push({ type: EventType.STATE_SNAPSHOT, snapshot: { workflow_name: this.workflowName, agent: this.agent, status: d.status } });
        out.push(this.finish(d.status, d.reason));
        this.done = true;
        break;
      }
      default:
        break;
    }
    return out.map((event, n) => ({ id: `${e.index}:${n}`, event }));
  }

  private finish(status: TimelineDataOf<'chat.run_complete'>['status'], reason: string | undefined): Event {
    const ids = { threadId: this.threadId, runId: this.runId };
    switch (status) {
      case 'failed':
        return { type: EventType.RUN_ERROR, message: reason ?? 'the run failed', code: this.errorCode ?? 'RUN_FAILED' };
      case 'stopped':
      case 'interrupted': // a newer message of the thread cut it off
      case 'rolled_back':
        return { type: EventType.RUN_FINISHED, ...ids, outcome: { type: 'cancelled' } };
      case 'awaiting_input':
        if (this.interrupts.length) return { type: EventType.RUN_FINISHED, ...ids, outcome: { type: 'interrupt', interrupts: this.interrupts } };
        return { type: EventType.RUN_FINISHED, ...ids, outcome: { type: 'success' } };
      default:
        return { type: EventType.RUN_FINISHED, ...ids, outcome: { type: 'success' } };
    }
  }

  /**
   * The run's own first event: its user message (keyed by its input's id), or an answer it resumes
   * with. Its turn's end counts too: a run that began reading past its opening still finishes.
   */
  private opens(e: TimelineEvent): boolean {
    if (e.type === 'chat.text') {
      const d = data(e, 'chat.text');
      return d.role === 'user' && d.message_id === `${this.turnId}:user`;
    }
    if (e.type === 'chat.run_complete') return data(e, 'chat.run_complete').turn_id === this.turnId;
    return e.type === 'chat.tool_call_complete' && this.answers.includes(data(e, 'chat.tool_call_complete').event_id);
  }

  /**
   * Whether a message or tool call (ids made from their turn's id) is this run's: another turn of
   * the thread may still speak after `base` (the end of one this run's message waited for, or one
   * a newer message cut off).
   */
  private mine(id: string): boolean {
    return this.turnId === null || id.startsWith(`${this.turnId}:`);
  }

  private enterStep(agent: string, out: Event[]): void {
    this.agent = agent;
    if (this.step === agent) return;
    this.closeMessages(out);
    if (this.step !== null) out.push({ type: EventType.STEP_FINISHED, stepName: this.step });
    this.step = agent;
    out.push({ type: EventType.STEP_STARTED, stepName: agent });
  }

  /** A message a crashed run left open is ended before anything else speaks. */
  private closeMessages(out: Event[]): void {
    for (const id of this.open) out.push({ type: EventType.TEXT_MESSAGE_END, messageId: id });
    this.open.clear();
  }
}
