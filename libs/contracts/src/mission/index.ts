export * from './http';
export * from './ws';
