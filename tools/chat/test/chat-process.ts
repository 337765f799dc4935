/**
 * `npm run chat -- …` as a user runs it, in a child process with piped stdin, stdout and stderr:
 * a test types lines, waits for what appears, ends the input and reads the exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './stack';

export class ChatProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    const base = { ...process.env };
    // The test says which token and gateway; none leak in from the shell that runs the tests.
    for (const k of ['TOKEN', 'TESSERA_URL', 'JWT_SECRET', 'NO_COLOR']) delete base[k];
    // Its own process group: npm, its shell and the tool all go when a test fails mid-way.
    this.child = spawn('npm', ['run', '--silent', 'chat', '--', ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    // A tool that exited before reading its input: the pipe's EPIPE is not the test's failure.
    this.child.stdin!.on('error', () => undefined);
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => this.child.once('close', (code) => r(code)));
  }

  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Ends the input, as Ctrl-D or the end of a pipe does. */
  endInput(): void {
    this.child.stdin!.end();
  }

  /** Waits until stdout (or stderr) holds the text, or fails with what the tool printed. */
  async waitFor(text: string | RegExp, opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<void> {
    const stream = opts.stream ?? 'stdout';
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    const has = () => (typeof text === 'string' ? this[stream].includes(text) : text.test(this[stream]));
    while (!has()) {
      if (this.child.exitCode !== null || Date.now() > deadline) throw new Error(`${stream} never showed ${String(text)}${this.child.exitCode !== null ? ` (exited ${this.child.exitCode})` : ''}\n${this.printed()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The exit code, or a failure with what was printed if it does not exit in time. */
  async exitCode(timeoutMs = 20_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const code = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (code === 'timeout') throw new Error(`npm run chat did not exit within ${timeoutMs} ms\n${this.printed()}`);
    return code;
  }

  kill(): void {
    try {
      process.kill(-this.child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }

  printed(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }
}

/** How many times `part` occurs in `text`. */
export function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}
