import type { CheckStatus, GatewayReadyReply } from '@tessera/contracts';
import { SERVICE_NAMES } from '../domain/routing';
import { getJson, type Instance, type ServerPool, type Upstreams } from '../proxy/upstreams';

type ServiceCheck = GatewayReadyReply['services'][string];
/** One instance's /health as /ready reports it. */
type InstanceCheck = ServiceCheck;
/** A service on /ready: the whole (ok while every instance is, down when none answers) and each instance. */
type ServiceReady = ServiceCheck & { instances: InstanceCheck[] };

/**
 * What the gateway's `/ready` adds to the kit's (Redis, shutting down: 503): each instance of each
 * service is asked for its /health, and one that is down or degraded makes its service and the
 * whole `degraded`, still 200: the gateway keeps routing to the other instances and services.
 */
export function upstreamsReady(upstreams: Upstreams, timeoutMs: number) {
  return async (): Promise<{ status: CheckStatus; services: Record<string, ServiceReady>; disabled: string[] }> => {
    const deployed = SERVICE_NAMES.filter((n) => upstreams[n].deployed);
    const services = await Promise.all(deployed.map(async (name) => [name, await serviceReady(upstreams[name], timeoutMs)] as const));
    return {
      status: services.some(([, s]) => s.status !== 'ok') ? 'degraded' : 'ok',
      services: Object.fromEntries(services),
      disabled: SERVICE_NAMES.filter((n) => !upstreams[n].deployed),
    };
  };
}

async function serviceReady(pool: ServerPool, timeoutMs: number): Promise<ServiceReady> {
  const instances = await Promise.all(pool.instances.map((inst) => instanceHealth(inst, timeoutMs)));
  const url = instances.map((i) => i.url).join(',');
  const latency_ms = Math.max(...instances.map((i) => i.latency_ms ?? 0));
  if (instances.length === 1) return { ...instances[0], instances };
  const down = instances.filter((i) => i.status === 'down').length;
  if (down === instances.length) return { status: 'down', url, latency_ms, error: 'every instance is down', instances };
  if (down > 0) return { status: 'degraded', url, latency_ms, error: `${down} of ${instances.length} instances down`, instances };
  return { status: instances.every((i) => i.status === 'ok') ? 'ok' : 'degraded', url, latency_ms, instances };
}

async function instanceHealth(inst: Instance, timeoutMs: number): Promise<InstanceCheck> {
  const url = inst.base.origin;
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  try {
    const { status, body } = await getJson(inst, '/health', timeoutMs);
    const reported = (body as { status?: string })?.status;
    if (status >= 400) return { status: 'down', url, latency_ms: ms(), error: `HTTP ${status}` };
    return { status: reported === 'degraded' || reported === 'down' ? 'degraded' : 'ok', url, latency_ms: ms() };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { status: 'down', url, latency_ms: ms(), error: err.code ?? err.message };
  }
}
