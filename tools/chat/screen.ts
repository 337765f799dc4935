/**
 * The terminal's lines: the conversation on stdout, notes and errors on stderr, a readline prompt
 * taken off its line before anything else is written and drawn again when asked. stdout holds
 * the conversation alone, so a message cut by a dropped connection continues unbroken there.
 */
import { clearLine, cursorTo, type Interface } from 'node:readline';
import type { Writable } from 'node:stream';

export const DIM = 2;
export const BOLD = 1;
export const RED = 31;
export const CYAN = 36;
export const YELLOW = 33;

export class Screen {
  /** The cursor is at the start of a line (stdout and stderr share a terminal). */
  private col0 = true;
  private prompting = false;

  constructor(
    private readonly output: Writable,
    private readonly errors: Writable,
    /** Only for a person at a terminal; piped input gets no prompts. */
    private readonly rl: Interface | null,
    private readonly color: boolean,
  ) {}

  prompt(label: string): void {
    if (!this.rl) return;
    this.rl.setPrompt(label);
    if (!this.col0) this.output.write('\n');
    this.rl.prompt(true);
    this.prompting = true;
    this.col0 = false;
  }

  /** Text as it streams (part of a line). */
  write(text: string): void {
    if (!text) return;
    this.unprompt();
    this.output.write(text);
    this.col0 = text.endsWith('\n');
  }

  /** Ends a line left open (a message cut short). */
  endLine(): void {
    this.unprompt();
    if (!this.col0) this.write('\n');
  }

  line(text: string): void {
    this.unprompt();
    this.endLine();
    this.write(`${text}\n`);
  }

  note(text: string): void {
    this.toErrors(this.paint(DIM, `[chat] ${text}`));
  }

  error(text: string): void {
    this.toErrors(this.paint(RED, `[chat] error: ${text}`));
  }

  paint(code: number, s: string): string {
    return this.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }

  private toErrors(text: string): void {
    this.unprompt();
    this.errors.write(`${this.col0 ? '' : '\n'}${text}\n`);
    this.col0 = true;
  }

  /** Takes the prompt off its line before other output. */
  private unprompt(): void {
    if (!this.prompting) return;
    this.prompting = false;
    clearLine(this.output, 0);
    cursorTo(this.output, 0);
    this.col0 = true;
  }
}
