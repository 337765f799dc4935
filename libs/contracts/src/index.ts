export * from './common/errors';
export * from './common/health';
export * from './common/ids';
export * from './bus';
export * from './runtime';
export * from './broker';
export * from './gateway';
export * from './openapi';
