import { runMain } from '@tessera/kit';
import { loadBridgeConfig } from './config';
import { startBridgeServer } from './server';

runMain('bridge', loadBridgeConfig, startBridgeServer);
