/**
 * Every Redis key of one bridge deployment, under its prefix (its channel is the contracts'
 * `Channel.bridgeSessions`). The prefix is a hash tag (`{tessera:bridge}:s:…`): the scripts and
 * transactions that keep a session, its reuse key and its quotas in step touch several of these at
 * once, which a Redis Cluster allows only within one slot. A bridge's state is small (one record a
 * running agent server), so one slot holds it all.
 */
export function keysOf(deployment: string) {
  // A prefix that has a hash tag of its own (a non-empty `{…}`) keeps it.
  const prefix = /\{[^}]+\}/.test(deployment) ? deployment : `{${deployment}}`;
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
    /** Agent servers held (and being started) by one user of an app, and by the app: the quotas, across instances. */
    userServers: (appId: string, userId: string) => `${prefix}:quota:user:${encodeURIComponent(appId)}:${encodeURIComponent(userId)}`,
    appServers: (appId: string) => `${prefix}:quota:app:${encodeURIComponent(appId)}`,
    request: (requestId: string) => `${prefix}:req:${requestId}`,
    requests: (id: string) => `${prefix}:reqs:${id}`,
  };
}
export type Keys = ReturnType<typeof keysOf>;
