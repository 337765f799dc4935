import { runMain } from '@tessera/kit';
import { loadAgentManagerConfig } from './config';
import { startAgentManagerServer } from './server';

runMain('agent-manager', loadAgentManagerConfig, startAgentManagerServer);
