import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Express } from 'express';
import { createLogger, listen, type Logger } from '../src';

/** A kit logger whose output (after every format, redaction included) is kept as lines. */
export function capturedLogger(service = 'test', level = 'debug'): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const logger = createLogger(service, level);
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk).trim());
          cb();
        },
      }),
    }),
  );
  return { logger, lines, text: () => lines.join('\n') };
}

/** Serve an app on a free port of 127.0.0.1; close() drops keep-alive sockets so jest exits. */
export async function serve(app: Express): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const { server, url } = await listen(app, 0, '127.0.0.1');
  return { server, url, close: () => closeServer(server) };
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolve when `predicate` holds, polling; reject after `timeoutMs`. */
export async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
