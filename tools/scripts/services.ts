/**
 * The processes `npm start` runs, in start order: the stack definition lives in
 * libs/kit/src/stack.ts, which the tests and benchmarks read too. A new service is added there, in
 * docker/compose.yaml, in the gateway's routes and in CI.
 */
export { SERVICES, type ServiceEntry as ServiceProcess } from '../../libs/kit/src/stack';
