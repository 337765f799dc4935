import { serviceConfig } from '../../tools/prisma/config';

export default serviceConfig('documents');
