import { runMain } from '@tessera/kit';
import { loadRuntimeConfig } from './config';
import { startRuntimeWorker } from './server';

/** The turn worker's process (`node dist/apps/runtime/worker.js`): turns from BullMQ, apart from the sockets. */
runMain('runtime-worker', loadRuntimeConfig, startRuntimeWorker);
