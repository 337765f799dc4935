/**
 * One chat in a terminal: a ChatConnection (libs/client: reconnect, resume, events applied once and
 * in order, unacknowledged input kept and sent again) drawn as plain lines. The agent's text is
 * written as it streams; a UI tool call awaiting an answer is shown with its fields and the next
 * line answers it; what the user types while the agent works waits until the agent is done, so
 * piped input (`printf 'hi\nAda\n' | npm run chat -- ask_user`) answers in order. The conversation
 * goes to stdout, notes and errors (connection lost, refused, ...) to stderr.
 */
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { ChatConnection, ChatEvent, ControlEvent, TesseraApi, TimelineEvent, ToolCall } from '@tessera/client';
import { BOLD, CYAN, DIM, Screen, YELLOW } from './screen';

export interface TerminalIo {
  input: Readable;
  output: Writable & { isTTY?: boolean };
  errors: Writable;
  /** A person types at a terminal: prompts are drawn (not for piped input). */
  interactive: boolean;
  color: boolean;
}

/** Lets the socket factory report an upgrade the gateway refused (the socket itself only says "closed"). */
export interface RefusalReports {
  onRefused: ((status: number) => void) | null;
}

type Unstarted = { kind: 'message'; text: string; inputId: string | null } | { kind: 'answer'; eventId: string };


export class TerminalChat {
  private rl: Interface | null = null;
  private screen!: Screen;
  /** The assistant message being written, by message_id. */
  private open: { id: string; text: string } | null = null;
  /**
   * What we sent whose turn has not begun, by client_message_id: a message until the timeline shows
   * it (its input_id, once acknowledged, or its text), an answer until its tool call completes.
   */
  private readonly unstarted = new Map<string, Unstarted>();
  /** Tool calls waiting for the user's answer, oldest first. */
  private awaiting: ToolCall[] = [];
  /** Lines typed while the agent works, used once it is done. */
  private readonly typeahead: string[] = [];
  /** A turn runs: from its first event to its chat.run_complete. */
  private turnRunning = false;
  private everLive = false;
  private liveOnThisSocket = false;
  private dropped = false;
  private eof = false;
  private finished = false;
  private finish: (code: number) => void = () => undefined;

  constructor(
    private readonly conn: ChatConnection,
    private readonly api: TesseraApi,
    private readonly io: TerminalIo,
    private readonly refusals: RefusalReports,
    /** How to come back to this chat, said on the way out. */
    private readonly rejoinHint: string,
  ) {}

  /** Runs until /quit, Ctrl-C, a refusal, or the end of input once the agent is done; resolves with the exit code. */
  run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.finish = resolve));
    const { input, output, interactive } = this.io;
    this.rl = createInterface({ input, output: interactive ? output : undefined, terminal: interactive, prompt: 'you> ' });
    this.screen = new Screen(output, this.io.errors, interactive ? this.rl : null, this.io.color);
    this.rl.on('line', (line) => this.onLine(line));
    this.rl.on('close', () => {
      this.eof = true;
      this.maybeEndOfInput();
    });
    // Ctrl-C at a terminal reaches readline; SIGINT/SIGTERM from elsewhere reach the process.
    this.rl.on('SIGINT', () => this.quit(0));
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => this.quit(0));
    this.refusals.onRefused = (status) => this.onUpgradeRefused(status);
    this.conn.on((e) => this.onEvent(e));
    this.conn.connect();
    return done;
  }

  /* ---------------------------------------------------------------- input */

  private onLine(raw: string): void {
    const line = raw.trim();
    if (this.finished) return;
    if (line === '/quit' || line === '/exit') return this.quit(0);
    if (line === '/help') {
      this.screen.note('a line is a message, or the answer to the tool call the agent waits on (a JSON object answers with that object); /stop stops the turn; /quit leaves (the chat stays: rejoin with --chat)');
      return this.prompt();
    }
    if (line === '/stop') return void this.stop();
    if (!line) return this.prompt();
    this.typeahead.push(line);
    this.drain();
  }

  /** Uses typed lines while the agent is not working: each answers the oldest waiting tool call, or is a message. */
  private drain(): void {
    while (this.typeahead.length && this.everLive && !this.busy && !this.finished) {
      const line = this.typeahead.shift()!;
      const call = this.awaiting.shift();
      // Not echoed: the user's own line is on the screen (a terminal) or in their input (a pipe).
      if (call) this.unstarted.set(this.conn.respondToolCall(call.event_id, answerOf(line)), { kind: 'answer', eventId: call.event_id });
      else this.unstarted.set(this.conn.send(line), { kind: 'message', text: line, inputId: null });
    }
  }

  /** The agent works, or will on what we sent. */
  private get busy(): boolean {
    return this.turnRunning || this.unstarted.size > 0;
  }

  private async stop(): Promise<void> {
    const { appId, chatId } = this.conn.ids;
    try {
      await this.api.stopChat(appId, chatId);
      this.screen.note('stopping the turn');
    } catch (e) {
      this.screen.error(`could not stop the turn: ${(e as Error).message}`);
    }
  }

  /* ---------------------------------------------------------------- events */

  private onEvent(e: ChatEvent): void {
    if (this.finished) return;
    switch (e.kind) {
      case 'timeline':
        this.onTimeline(e.event);
        break;
      case 'control':
        this.onControl(e.event);
        break;
      case 'rejected':
        this.screen.error(`your ${e.action.kind === 'message' ? 'message' : 'answer'} was refused: ${e.error.message} (${e.error.error_code})`);
        this.unstarted.delete(e.action.client_message_id);
        this.drain();
        this.prompt();
        break;
      case 'status':
        this.onStatus(e.status);
        break;
      case 'socket_closed':
        // Refused as it opened (bad token, not this user's chat, unknown chat): trying again cannot help.
        if (e.code === 1008 && !this.liveOnThisSocket) {
          this.screen.error(`the runtime refused the chat socket: ${e.reason || 'policy violation'}`);
          return this.quit(1);
        }
        break;
    }
    this.maybeEndOfInput();
  }

  private onStatus(status: string): void {
    if (status === 'connecting') this.liveOnThisSocket = false;
    if (status === 'live') {
      this.liveOnThisSocket = true;
      if (!this.everLive) {
        this.everLive = true;
        this.screen.note(`connected; type a message${this.io.interactive ? ' (/help for commands)' : ''}`);
      } else if (this.dropped) {
        this.screen.note('reconnected; the conversation continues');
      }
      this.dropped = false;
      this.drain();
      this.prompt();
    }
    if (status === 'waiting' && !this.dropped) {
      this.dropped = true;
      this.screen.note(this.everLive ? 'connection lost; reconnecting…' : 'cannot connect yet; retrying…');
    }
  }

  private onControl(e: ControlEvent): void {
    switch (e.type) {
      case 'ack.input':
      case 'chat.input_ack':
      {
        const ours = e.data.client_message_id === null ? undefined : this.unstarted.get(e.data.client_message_id);
        if (ours?.kind === 'message') ours.inputId = e.data.input_id;
        break;
      }
      case 'chat.error':
        this.screen.error(`${e.data.message} (${e.data.error_code})`);
        break;
    }
  }

  private onTimeline(e: TimelineEvent): void {
    switch (e.type) {
      case 'chat.text': {
        const d = e.data;
        if (d.role === 'user') {
          const text = d.content ?? d.delta;
          const inputId = d.message_id.replace(/:user$/, '');
          this.turnRunning = true;
          const mine = (match: (u: Unstarted & { kind: 'message' }) => boolean) => [...this.unstarted].find(([, u]) => u.kind === 'message' && match(u))?.[0];
          const id = mine((u) => u.inputId === inputId) ?? mine((u) => u.text === text);
          // History of a rejoined chat, or a message from another device.
          if (id === undefined) this.screen.line(`${this.screen.paint(BOLD, 'you:')} ${text}`);
          else this.unstarted.delete(id);
          break;
        }
        this.turnRunning = true;
        if (this.open?.id !== d.message_id) {
          this.endMessage();
          this.screen.endLine();
          this.screen.write(`${this.screen.paint(CYAN, `${d.agent}:`)} `);
          this.open = { id: d.message_id, text: '' };
        }
        this.screen.write(d.delta);
        this.open.text += d.delta;
        if (d.done) {
          // The last event carries the whole text: write what the deltas did not (a compacted history).
          if (d.content && d.content.startsWith(this.open.text)) this.screen.write(d.content.slice(this.open.text.length));
          this.open = null;
          this.screen.write('\n');
        }
        break;
      }
      case 'chat.print':
        this.endMessage();
        this.screen.line(`${this.screen.paint(CYAN, `${e.data.agent}:`)} ${e.data.content}`);
        break;
      case 'chat.tool_call':
        this.endMessage();
        this.showToolCall(e.data);
        break;
      case 'chat.tool_call_complete': {
        const id = e.data.event_id;
        this.awaiting = this.awaiting.filter((t) => t.event_id !== id);
        // The agent goes on with the answer.
        this.turnRunning = true;
        const mine = [...this.unstarted].find(([, u]) => u.kind === 'answer' && u.eventId === id)?.[0];
        if (mine === undefined) this.screen.line(this.screen.paint(DIM, `  [${e.data.tool_name} answered: ${JSON.stringify(e.data.response)}]`));
        else this.unstarted.delete(mine);
        break;
      }
      case 'chat.tool_call_dismiss':
        this.awaiting = this.awaiting.filter((t) => t.event_id !== e.data.event_id);
        this.screen.line(this.screen.paint(DIM, `  [the question was withdrawn: ${e.data.reason}]`));
        break;
      case 'chat.tool_response':
        this.endMessage();
        this.screen.line(this.screen.paint(DIM, `  [${e.data.agent} used ${e.data.tool_name}: ${clip(e.data.content, 160)}]`));
        break;
      case 'chat.attachment_uploaded':
        this.screen.line(this.screen.paint(DIM, `  [${e.data.uploaded_by} attached ${e.data.filename}, ${e.data.size} bytes]`));
        break;
      case 'chat.run_complete':
        this.endMessage();
        if (e.data.status === 'failed') this.screen.error(`the turn failed${e.data.reason ? `: ${e.data.reason}` : ''}`);
        if (e.data.status === 'stopped') this.screen.note(`the turn was stopped${e.data.reason ? `: ${e.data.reason}` : ''}`);
        this.turnRunning = false;
        this.drain();
        this.prompt();
        break;
      case 'chat.error':
        this.endMessage();
        this.screen.error(`${e.data.message} (${e.data.error_code})`);
        this.turnRunning = false;
        this.drain();
        this.prompt();
        break;
    }
  }

  private showToolCall(d: ToolCall): void {
    const { question, prompt, message, ...rest } = d.payload;
    const asked = [question, prompt, message].find((v) => typeof v === 'string') as string | undefined;
    const head = this.screen.paint(YELLOW, `[${d.tool_name}${d.component && d.component !== d.tool_name ? ` · ${d.component}` : ''}]`);
    const verb = d.awaiting_response ? 'asks' : 'shows';
    this.screen.line(`${head} ${d.agent} ${verb}${asked ? `: ${asked}` : ''}`);
    const fields = asked ? rest : d.payload;
    for (const [k, v] of Object.entries(fields)) this.screen.line(`  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
    if (!d.awaiting_response || this.awaiting.some((t) => t.event_id === d.event_id)) return;
    this.awaiting.push(d);
    this.screen.line(this.screen.paint(DIM, '  (answer on the next line; a JSON object answers with exactly that object)'));
  }

  /** A message left open by a turn that ended without its last event (stopped, failed). */
  private endMessage(): void {
    if (!this.open) return;
    this.open = null;
    this.screen.endLine();
  }

  private onUpgradeRefused(status: number): void {
    // 429 and 5xx pass (rate limit, a runtime restarting behind the gateway): the connection retries.
    if (status === 429 || status >= 500) return;
    const why =
      status === 401
        ? 'the token was refused (expired? npm start prints a new one)'
        : status === 403
          ? 'the token does not allow this chat'
          : status === 404
            ? 'no such chat socket'
            : 'refused';
    this.screen.error(`the gateway refused the chat socket (${status}): ${why}`);
    this.quit(1);
  }

  /** Input ended: leave once everything typed is sent, acknowledged and answered. */
  private maybeEndOfInput(): void {
    if (!this.eof || this.finished || !this.everLive) return;
    if (this.typeahead.length || this.busy || this.conn.pendingActions.length || this.conn.status !== 'live') return;
    if (this.awaiting.length) this.screen.note(`the agent waits for your answer to ${this.awaiting[0].tool_name}`);
    this.quit(0);
  }

  private quit(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.screen.endLine();
    this.screen.note(this.rejoinHint);
    this.conn.close();
    this.rl?.close();
    this.finish(code);
  }

  /* ---------------------------------------------------------------- drawing */

  private prompt(): void {
    if (this.finished || !this.everLive || this.busy) return;
    this.screen.prompt(this.awaiting.length ? 'answer> ' : 'you> ');
  }
}

/** A typed answer to a tool call: a JSON object as it is, anything else as `{ answer }` (what ask_user-style tools read). */
export function answerOf(line: string): Record<string, unknown> {
  if (line.startsWith('{')) {
    try {
      const v = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v;
    } catch {
      // not JSON: the words are the answer
    }
  }
  return { answer: line };
}

function clip(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}
