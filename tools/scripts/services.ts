/**
 * The processes `npm start` runs, in start order. A new service is added here, in
 * docker/compose.yaml, in the gateway's routes and in CI.
 */
export interface ServiceProcess {
  name: string;
  app: string;
  entry: string;
  port?: number;
}

export const SERVICES: ServiceProcess[] = [
  { name: 'broker', app: 'broker', entry: 'apps/broker/src/main.ts', port: 8001 },
  { name: 'gateway', app: 'gateway', entry: 'apps/gateway/src/main.ts', port: 8080 },
];
