import { runMain } from '@tessera/kit';
import { loadObservabilityConfig } from './config';
import { startObservabilityServer } from './server';

runMain('observability', loadObservabilityConfig, startObservabilityServer);
