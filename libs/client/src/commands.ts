/**
 * The chat socket's commands besides messages and tool answers (document 003 §4: switch workflow,
 * general mode, start chats). Unlike a message they carry no client_message_id, so they are not
 * queued across drops (a `chat.start_workflow` sent twice starts two chats): a command is sent
 * while the socket is live, or refused at once, and its promise settles with the runtime's reply,
 * its refusal, or the drop of the socket before either.
 */
import type { ClientMessage } from '@tessera/contracts';
import type { ControlEvent } from './events';

export type ChatCommand = Extract<
  ClientMessage,
  { type: 'chat.switch_workflow' | 'chat.enter_general_mode' | 'chat.start_general_chat' | 'chat.start_workflow' | 'chat.start_workflow_batch' }
>;
export type CommandReply = Extract<ControlEvent, { type: 'chat.mode_changed' | 'chat.workflow_started' }>;

/** A command the runtime refused (`code`: its chat.error code) or that could not be sent or answered. */
export class CommandFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CommandFailed';
  }
}

interface Outstanding {
  id: string;
  expected: number;
  replies: CommandReply[];
  resolve(replies: CommandReply[]): void;
  reject(err: CommandFailed): void;
}

/** How many replies a command gets: the runtime answers each one in order, on the same socket. */
function repliesOf(cmd: ChatCommand): number {
  switch (cmd.type) {
    case 'chat.start_general_chat':
      return 2; // mode_changed, then workflow_started
    case 'chat.start_workflow_batch':
      return cmd.workflows.length;
    default:
      return 1;
  }
}

export class CommandTracker {
  private waiting: Outstanding[] = [];

  add(id: string, cmd: ChatCommand): Promise<CommandReply[]> {
    return new Promise((resolve, reject) => this.waiting.push({ id, expected: repliesOf(cmd), replies: [], resolve, reject }));
  }

  /** A mode_changed or workflow_started answers the oldest command; returns its id once it has all its replies. */
  reply(e: CommandReply): string | null {
    const c = this.waiting[0];
    if (!c) return null; // another socket's command (or the runtime's own): nothing waits on it
    c.replies.push(e);
    if (c.replies.length < c.expected) return null;
    this.waiting.shift();
    c.resolve(c.replies);
    return c.id;
  }

  fail(id: string, err: CommandFailed): boolean {
    const c = this.waiting.find((w) => w.id === id);
    if (!c) return false;
    this.waiting = this.waiting.filter((w) => w !== c);
    c.reject(err);
    return true;
  }

  /** The socket closed: nothing more will answer these (they may or may not have been applied). */
  abandon(): void {
    const gone = this.waiting;
    this.waiting = [];
    for (const c of gone) c.reject(new CommandFailed('CONNECTION_LOST', 'the connection closed before the runtime answered; the command may have been applied'));
  }
}
