/**
 * Document 002's own client code (`fixtures/mission-ally-002/`, verbatim), run unchanged: compiled
 * as is and evaluated with the globals a page would give it, a WebSocket that dials the document's
 * `ws://localhost:8080/` at this test's gateway and a console whose lines the test reads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';
import WebSocketImpl from 'ws';

export const FIXTURES = join(__dirname, 'fixtures/mission-ally-002');

export type Frame = { type: string; [k: string]: any };

/**
 * A socket the document's code opened: the `ws` package (the browser API: onopen, onmessage with
 * `event.data`, onclose with `event.code`/`reason`, readyState, OPEN), recording every frame it delivers.
 */
export class DocumentSocket extends WebSocketImpl {
  readonly frames: Frame[] = [];
  constructor(url: string, port: number, made: DocumentSocket[]) {
    super(url.replace('ws://localhost:8080/', `ws://127.0.0.1:${port}/`));
    made.push(this);
    this.on('message', (d) => this.frames.push(JSON.parse(d.toString())));
    this.on('error', () => undefined);
  }
}

/** The WebSocket class to give the document's code: it dials the gateway on `port()`; `made` holds every socket opened, in order. */
export function socketsTo(port: () => number): { WebSocket: new (url: string) => DocumentSocket; made: DocumentSocket[] } {
  const made: DocumentSocket[] = [];
  return {
    WebSocket: class extends DocumentSocket {
      constructor(url: string) {
        super(url, port(), made);
      }
    },
    made,
  };
}

/** The document's code from a fixture, compiled as is (JSX too) and evaluated with `scope` as its globals. */
export function documentCode<T>(file: string, names: string[], scope: Record<string, unknown>): T {
  const source = readFileSync(join(FIXTURES, file), 'utf8');
  const { code } = transformSync(source, { loader: file.endsWith('.jsx') ? 'jsx' : 'js', format: 'cjs', jsx: 'automatic', target: 'es2022' });
  const module = { exports: {} as Record<string, unknown> };
  const keys = Object.keys(scope);
  new Function('require', 'module', 'exports', ...keys, `${code}\nmodule.exports = { ${names.join(', ')} };`)(require, module, module.exports, ...keys.map((k) => scope[k]));
  return module.exports as T;
}

/** A console for the document's code: its lines, in order. */
export function lineConsole() {
  const lines: string[] = [];
  const line = (prefix: string) => (...a: unknown[]) => lines.push(prefix + a.map((x) => (x instanceof Error ? `${x.name}` : String(x))).join(' '));
  return { lines, console: { log: line(''), error: line('ERROR '), warn: line('WARN ') } };
}
