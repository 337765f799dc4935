/** Every Redis key and channel of one bridge deployment, under its prefix. */
export function keysOf(prefix: string) {
  return {
    session: (id: string) => `${prefix}:s:${id}`,
    reuse: (reuseKey: string) => `${prefix}:reuse:${reuseKey}`,
    lock: (reuseKey: string) => `${prefix}:lock:${reuseKey}`,
    sessions: `${prefix}:sessions`,
    /** Open sockets of a session, counted per instance. */
    subscribers: (id: string) => `${prefix}:subs:${id}`,
    alive: (instance: string) => `${prefix}:alive:${instance}`,
    /** The process registry: `{instance}:{pid}` → who started which agent server, for reaping. */
    procs: `${prefix}:procs`,
    request: (requestId: string) => `${prefix}:req:${requestId}`,
    requests: (id: string) => `${prefix}:reqs:${id}`,
    /** One pub/sub channel for the deployment: envelopes, closes, settled requests. */
    bus: `${prefix}:bus`,
  };
}
export type Keys = ReturnType<typeof keysOf>;
