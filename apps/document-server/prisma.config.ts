import { serviceConfig } from '../../tools/prisma/config';

export default serviceConfig('document_server');
