export * from './http';
export * from './usage';
export * from './ws';
