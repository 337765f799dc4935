import { runMain } from '@tessera/kit';
import { loadDocumentServerConfig } from './config';
import { startDocumentServer } from './server';

runMain('document-server', loadDocumentServerConfig, startDocumentServer);
