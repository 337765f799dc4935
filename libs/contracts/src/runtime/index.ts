export * from './http';
export * from './ws';
export * from './workflow';
