import { mission as m } from '@tessera/contracts';

/** A timeline event as the adapter reads it from its wire envelope. */
interface TimelineEnvelope {
  type: string;
  data: Record<string, unknown>;
}

/** A sentence ends at . ! ? or … followed by whitespace, or at a line break. */
const SENTENCE_END = /[.!?…]["')\]]*\s+|\n+/g;

/**
 * The finished sentences at the start of `text` (trimmed, empty ones dropped) and what follows
 * them. Cutting a text that grows (a streamed message) or the whole text at once gives the same
 * sentences: a cut needs the whitespace after the punctuation, so it never moves when more text
 * arrives. Live sockets and `historical_messages` both cut with this, so a reload shows the
 * bubbles the learner saw.
 */
export function splitSentences(text: string): { sentences: string[]; rest: string } {
  const sentences: string[] = [];
  let from = 0;
  for (const r of text.matchAll(SENTENCE_END)) {
    const end = r.index + r[0].length;
    const sentence = text.slice(from, end).trim();
    if (sentence) sentences.push(sentence);
    from = end;
  }
  return { sentences, rest: text.slice(from) };
}

/** A finished message as the `agent_message`s a live socket sent for it. */
export function messageBubbles(text: string): string[] {
  const { sentences, rest } = splitSentences(text);
  const last = rest.trim();
  return last ? [...sentences, last] : sentences;
}

export const HANDOVER_MESSAGE = (agent: string) => `Handing over to ${agent}...`;

/**
 * Document 002's view of a chat's timeline, one socket's worth (pure: no I/O). A turn opens with
 * the user's message (`agent_processing_start`) and ends with `chat.run_complete`
 * (`agent_processing_end`, after `error` when it failed or was stopped). The assistant's text is
 * streamed sentence by sentence: the document's examples render every `agent_message` as a
 * message of its own, so a word each would read as a column of words, and a whole reply at once
 * would not stream.
 */
export class TimelineMapper {
  /** A turn is open: its start was sent and its end not yet. */
  inTurn = false;
  private pending = '';
  /** Checkpoint events of the open turn, for the adapter to record (and close on completion). */
  completion: m.CheckpointEventPayload | null = null;
  private announced = 0;

  /** `pending`: the unfinished sentence of a message still streaming when the socket opened. */
  constructor(opts: { inTurn?: boolean; completedCount?: number; pending?: string } = {}) {
    this.inTurn = opts.inTurn ?? false;
    this.announced = opts.completedCount ?? 0;
    this.pending = opts.pending ?? '';
  }

  map(e: TimelineEnvelope): m.ServerMessage[] {
    const out: m.ServerMessage[] = [];
    const d = e.data;
    switch (e.type) {
      case 'chat.text':
        if (d.role === 'user') {
          if (d.done) this.open(out);
        } else {
          if (typeof d.delta === 'string' && d.delta) {
            this.open(out);
            this.pending += d.delta;
            this.flushSentences(out);
          }
          if (d.done) this.flushAll(out);
        }
        break;
      case 'chat.custom_event': {
        const payload = (d.payload ?? {}) as Record<string, unknown>;
        if (d.kind === 'handoff' && typeof payload.to === 'string') {
          this.flushAll(out);
          out.push({ type: 'agent_handover', agent: payload.to, message: HANDOVER_MESSAGE(payload.to) });
        } else if (d.kind === m.CHECKPOINT_EVENT_KIND) {
          const p = m.CheckpointEventPayload.safeParse(payload);
          if (!p.success) break;
          this.completion = p.data;
          // Sent when the list grows past what this socket has announced (a replayed event does not).
          if (p.data.completed_checkpoints.length > this.announced) {
            this.announced = p.data.completed_checkpoints.length;
            this.flushAll(out);
            out.push({ type: 'checkpoint_update', completed_checkpoints: p.data.completed_checkpoints, progress: p.data.progress });
          }
        }
        break;
      }
      case 'chat.error':
        this.flushAll(out);
        out.push({ type: 'error', message: typeof d.message === 'string' ? d.message : 'the tutor failed' });
        break;
      case 'chat.run_complete':
        this.open(out);
        this.flushAll(out);
        if (d.status === 'stopped') out.push({ type: 'error', message: `the conversation was stopped${typeof d.reason === 'string' ? `: ${d.reason}` : ''}` });
        out.push({ type: 'agent_processing_end' });
        this.inTurn = false;
        break;
    }
    return out;
  }

  private open(out: m.ServerMessage[]): void {
    if (this.inTurn) return;
    this.inTurn = true;
    this.completion = null;
    out.push({ type: 'agent_processing_start' });
  }

  /** One `agent_message` per finished sentence, however the text was cut into deltas. */
  private flushSentences(out: m.ServerMessage[]): void {
    const { sentences, rest } = splitSentences(this.pending);
    for (const message of sentences) out.push({ type: 'agent_message', message });
    this.pending = rest;
  }

  private flushAll(out: m.ServerMessage[]): void {
    for (const message of messageBubbles(this.pending)) out.push({ type: 'agent_message', message });
    this.pending = '';
  }
}
