import { runMain } from '@tessera/kit';
import { loadObservabilityConfig } from './config';
import { startObservabilityWorker } from './server';

/** The ingest queue's consumer without HTTP (`node dist/apps/observability/worker.js`), to scale ingest apart. */
runMain('observability-worker', loadObservabilityConfig, startObservabilityWorker);
