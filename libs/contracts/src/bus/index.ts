export * from './queues';
export * from './channels';
