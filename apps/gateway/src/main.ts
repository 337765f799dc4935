import { runMain } from '@tessera/kit';
import { loadGatewayConfig } from './config';
import { startGatewayServer } from './server';

runMain('gateway', loadGatewayConfig, startGatewayServer);
