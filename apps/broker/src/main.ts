import { runMain } from '@tessera/kit';
import { loadBrokerConfig } from './config';
import { startBrokerServer } from './server';

runMain('broker', loadBrokerConfig, startBrokerServer);
