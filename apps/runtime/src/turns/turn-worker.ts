import { Queue } from '@tessera/contracts';
import { bullConnection, createTypedWorker } from '@tessera/kit';
import type { RuntimeServices } from '../services';
import { missionCheckpoints } from '../engine/checkpoints';
import { TailFlusher } from '../store/tail-flusher';
import { InputSweep } from './input-sweep';
import { TurnRunner } from './turn-runner';

/** How often a worker looks whether jobs wait for it, and how long a wait makes a backlog. */
const BACKLOG_CHECK_MS = 100;
const BACKLOG_MS = 100;

/**
 * The turn worker (worker.ts runs it as its own process; EMBEDDED_WORKER runs it in main.ts), so that sockets and workers scale
 * apart. BullMQ's stalled-job check gives a dead worker's turn to another within seconds.
 */
export async function startTurnWorker(s: RuntimeServices) {
  const runner = new TurnRunner({
    chats: s.chats,
    inputs: s.inputs,
    toolCalls: s.toolCalls,
    timeline: s.timeline,
    turnEnd: s.turnEnd,
    feed: s.feed,
    lease: s.lease,
    workflows: s.workflows,
    providers: s.providers,
    logger: s.logger,
    observe: s.observe,
    resolveBlueprint: s.blueprints?.resolve,
    history: { maxMessages: s.config.CONVERSATION_MAX_MESSAGES, maxChars: s.config.CONVERSATION_MAX_CHARS },
    extensions: [missionCheckpoints],
    budgets: s.budgets,
  });
  // Before the first job: a blueprint edited from now on is read afresh by the next turn.
  await s.blueprints?.listen(s.subscriber);
  await s.feed.onControl((m) => {
    if (m.action === 'interrupt') {
      // Sent by the runtime itself once the superseded inputs are cancelled (chat-inputs.ts).
      runner.supersede(m.session_id, BigInt(m.before_seq), m.rollback);
      return;
    }
    // Only a stop naming the chat's own app: the same id in another app is not this chat.
    void s.chats.get(m.session_id).then(
      (chat) => chat?.appId === m.app_id && runner.stop(m.session_id, m.reason ?? 'stopped by request'),
      (e: Error) => s.logger.warn('stop failed', { chat_id: m.session_id, error: e.message }),
    );
  });
  // Whether other chats' jobs wait for a slot: the oldest waiting job has waited longer than
  // BACKLOG_MS (looked up every BACKLOG_CHECK_MS; a job that is merely not fetched yet does not
  // count). Then a chat's next input goes to the back of the line instead of running at once.
  let backlogged = false;
  const backlog = setInterval(() => {
    s.turnQueue.queue.getJobs(['waiting'], 0, 0, true).then(
      ([oldest]) => (backlogged = !!oldest && Date.now() - oldest.timestamp > BACKLOG_MS),
      () => undefined,
    );
  }, BACKLOG_CHECK_MS);
  backlog.unref();
  runner.setBacklogged(() => backlogged);
  const worker = createTypedWorker(Queue.RuntimeTurns, bullConnection(s.config.REDIS_URL), s.logger, (data, job, token) => runner.process(data, job, token), {
    prefix: s.config.BULL_PREFIX,
    concurrency: s.config.WORKER_CONCURRENCY,
    lockDuration: 5_000,
    stalledInterval: 2_000,
    maxStalledCount: 5,
  });
  await worker.waitUntilReady();
  // With the timeline's tail, one worker at a time writes to PostgreSQL what writers left in the tails (its sweeper).
  const flusher = s.timeline.tail ? new TailFlusher(s.timeline.tail, s.redis, s.logger, `${s.config.BULL_PREFIX}:tail:flusher`).start() : null;
  const sweep = new InputSweep(
    { inputs: s.inputs, turnQueue: s.turnQueue, redis: s.redis, logger: s.logger, prefix: s.config.BULL_PREFIX },
    { intervalMs: s.config.INPUT_SWEEP_MS, requeueAfterMs: s.config.INPUT_REQUEUE_AFTER_MS },
  ).start();
  return {
    runner,
    worker,
    sweep,
    flusher,
    /** Running turns are handed back to the queue for another worker; chats are left as they are. */
    async close() {
      clearInterval(backlog);
      await sweep.close();
      runner.abortAll();
      await worker.close();
      await flusher?.close();
    },
  };
}
