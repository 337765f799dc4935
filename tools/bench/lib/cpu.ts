/**
 * Where the CPU went during a load: each service started by the benchmark, the benchmark process
 * itself, and the PostgreSQL and Redis servers (every process of that name), as % of one core.
 * Linux /proc only; read-only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import pg from 'pg';
import { pgConnectionString } from '@tessera/kit';
import { cpuSecondsOf } from './proc';
import { benchRedis, serverPids } from './redis';

export type CpuSample = { at: number; by: Map<string, number>; external: Map<number, [string, number]> };

const EXTERNAL: Record<string, string> = { postgres: 'postgres', 'redis-server': 'redis' };

/**
 * The servers the benchmark uses (others of the same name on the machine are not counted): the
 * PostgreSQL postmaster, and each Redis server's pid with the name its CPU is reported under.
 */
const servers = { postmaster: 0, redis: new Map<number, string>() };

/**
 * Find the PostgreSQL postmaster (parent of a backend of ours) and the Redis server(s) (their
 * process_id; every node of a cluster) behind these URLs; until then every process of those names
 * counts.
 */
export async function discoverServers(databaseUrl: string, redisUrl: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgConnectionString(databaseUrl) });
  await c.connect();
  try {
    const backend = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    servers.postmaster = ppidOf(backend);
  } finally {
    await c.end();
  }
  await addRedisServers(redisUrl, 'redis');
}

/**
 * Count the Redis server(s) behind `redisUrl` (every node of a cluster: primaries and replicas)
 * under `label` from now on, e.g. a throwaway cluster beside the single Redis.
 */
export async function addRedisServers(redisUrl: string, label: string): Promise<void> {
  const r = await benchRedis(redisUrl, 'bench-cpu');
  try {
    for (const pid of await serverPids(r)) servers.redis.set(pid, label);
  } finally {
    r.disconnect();
  }
}

function ppidOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** CPU seconds so far of the PostgreSQL and Redis server processes, by pid. */
function externalCpu(): Map<number, [string, number]> {
  const out = new Map<number, [string, number]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    let comm: string;
    try {
      comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    let name = EXTERNAL[comm];
    if (!name) continue;
    if (name === 'postgres' && servers.postmaster && pid !== servers.postmaster && ppidOf(pid) !== servers.postmaster) continue;
    if (name === 'redis' && servers.redis.size) {
      const label = servers.redis.get(pid);
      if (!label) continue;
      name = label;
    }
    const s = cpuSecondsOf(pid);
    if (Number.isFinite(s)) out.set(pid, [name, s]);
  }
  return out;
}

/** A snapshot of CPU seconds used so far by `pids` (name → pid), this process, Postgres, Redis. */
export function cpuSample(pids: Record<string, number>): CpuSample {
  const by = new Map<string, number>();
  const external = externalCpu();
  for (const [name, pid] of Object.entries(pids)) by.set(name, cpuSecondsOf(pid));
  const u = process.cpuUsage();
  by.set('bench', (u.user + u.system) / 1e6);
  by.set('(machine)', machineBusySeconds());
  return { at: performance.now(), by, external };
}

/** "api-a 45%, worker 98%, …" between two samples, busiest first. */
export function cpuReport(a: CpuSample, b: CpuSample): string {
  const secs = (b.at - a.at) / 1000;
  const rows: [string, number][] = [];
  let machine = NaN;
  for (const [name, v] of cpuDelta(a, b)) {
    const p = (v / secs) * 100;
    if (name === '(machine)') machine = p;
    else rows.push([name, p]);
  }
  rows.sort((x, y) => y[1] - x[1]);
  const total = rows.reduce((s, r) => s + r[1], 0);
  // Whatever else ran on the machine meanwhile (other processes, or ours that exited): noise or
  // e.g. autovacuum.
  const other = Number.isFinite(machine) ? Math.max(0, machine - total) : NaN;
  return `${rows.map(([n, p]) => `${n} ${p.toFixed(0)}%`).join(', ')} (sum ${total.toFixed(0)}%; other/exited processes ${Number.isFinite(other) ? other.toFixed(0) : '?'}%; of ${cpus().length * 100}%)`;
}

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f; // idle and iowait left out
    return (user + nice + system + irq + softirq + (steal ?? 0)) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds each process used between two samples (machine total as '(machine)'). */
export function cpuDelta(a: CpuSample, b: CpuSample): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, v] of b.by) {
    const before = a.by.get(name);
    if (before !== undefined && Number.isFinite(v)) out.set(name, v - before);
  }
  // PostgreSQL and Redis: processes alive at the second sample; one that started in between (a
  // backend a pool opened under load) counts whole. A backend or autovacuum worker that came and
  // went in between is counted with "other/exited".
  for (const name of new Set(Object.values(EXTERNAL))) out.set(name, 0);
  for (const [pid, [name, v]] of b.external) {
    const before = a.external.get(pid);
    out.set(name, (out.get(name) ?? 0) + Math.max(0, v - (before?.[1] ?? 0)));
  }
  return out;
}

/** "worker-1 7.1, postgres 3.0, …" ms of CPU per unit of work (e.g. per turn), busiest first. */
export function cpuPer(a: CpuSample, b: CpuSample, units: number): string {
  return cpuPerOf(cpuDelta(a, b), units);
}

/** cpuDelta of several intervals, summed per process (one measurement taken in parts). */
export function cpuSum(...deltas: Map<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of deltas) for (const [name, v] of d) out.set(name, (out.get(name) ?? 0) + v);
  return out;
}

/** cpuPer of a cpuDelta (or a cpuSum of several). */
export function cpuPerOf(delta: Map<string, number>, units: number): string {
  const rows = [...delta].filter(([n]) => n !== '(machine)' && n !== 'bench');
  rows.sort((x, y) => y[1] - x[1]);
  const total = rows.reduce((s, [, v]) => s + v, 0);
  const ms = (v: number) => ((v / units) * 1000).toFixed((v / units) * 1000 < 1 ? 2 : 1);
  return `${rows.map(([n, v]) => `${n} ${ms(v)}`).join(', ')} (total ${ms(total)} ms)`;
}
