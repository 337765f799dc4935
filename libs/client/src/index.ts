export * from './api';
export * from './connection';
export * from './events';
export * from './host';
export * from './pending';
export * from './ui-tools';
export * from './chat-view';
export * from './commands';
