import { runMain } from '@tessera/kit';
import { loadRuntimeConfig } from './config';
import { startRuntimeServer } from './server';

runMain('runtime', loadRuntimeConfig, startRuntimeServer);
