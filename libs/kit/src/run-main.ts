import { createLogger, type Logger } from './logger';
import type { GracefulShutdown } from './shutdown';

/** What a process's start function (its `server.ts`) hands back to `runMain`. */
export interface RunningProcess {
  /** The shutdown order the start function declared; `runMain` starts it on the signals. */
  shutdown: GracefulShutdown;
  /** The one line logged once the process serves: its message and what an operator checks. */
  ready: { message: string; fields?: Record<string, unknown> };
  /** Signals that start the shutdown (default SIGTERM and SIGINT). */
  signals?: NodeJS.Signals[];
}

/**
 * A process's whole `main`: reads the config (a missing or bad variable stops it, exit 1, with the
 * variable's name and the reason, never its value), makes the logger, starts the process as
 * deployed, then waits for a signal: the declared shutdown runs and the process exits 0 (1 after an
 * error nothing caught, GracefulShutdown.listen). A start that fails exits 1 with its message.
 *
 * ```ts
 * runMain('observability', loadObservabilityConfig, startObservabilityServer);
 * ```
 */
export function runMain<C extends { LOG_LEVEL: string }>(name: string, loadConfig: () => C, start: (config: C, logger: Logger) => Promise<RunningProcess>): Promise<void> {
  return runTask(async () => {
    const config = loadConfig();
    const logger = createLogger(name, config.LOG_LEVEL);
    const running = await start(config, logger);
    running.shutdown.listen(running.signals);
    logger.info(running.ready.message, running.ready.fields);
  });
}

/**
 * A one-shot command (a seed, a migration helper): runs it, and on a failure prints its message
 * (not its stack or values) and exits 1. Exits on its own with 0 once nothing holds it open.
 */
export function runTask(task: () => Promise<void>): Promise<void> {
  return task().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
