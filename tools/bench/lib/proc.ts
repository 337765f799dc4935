/**
 * Process plumbing shared by the benchmarks: free ports, spawning services as deployed (one node
 * process per service, TypeScript loaded by tsx), readiness, and cleanup that also runs on errors
 * and Ctrl-C, so that a benchmark never leaves a process, schema or temp dir behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { httpCall } from './http';

export const ROOT = resolve(__dirname, '../../..');

export interface Service {
  name: string;
  child: ChildProcess;
  /** The pid of the node process running the service (not of a wrapper). */
  pid: number;
  /** The last ~20 KB of its stdout + stderr. */
  output(): string;
  stop(): Promise<void>;
}

const services = new Set<Service>();
const cleanups: (() => Promise<unknown> | unknown)[] = [];

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

export interface SpawnOptions {
  /** Ready when GET http://127.0.0.1:{port}/health answers 200 … */
  port?: number;
  /** … or when this text appears in the output. */
  log?: string;
  /** Extra node flags (e.g. --cpu-prof, --expose-gc). */
  nodeArgs?: string[];
  timeoutMs?: number;
  /** Open an IPC channel (child.send / process.send). */
  ipc?: boolean;
}

/**
 * Start `entry` (a .ts file under ROOT, or a .js bundle) in its own node process. TypeScript runs
 * through tsx's loader inside that one process (`node --require tsx/preflight --import tsx/loader`),
 * as `tsx file.ts` does minus its wrapper process, so that `pid` is the service itself.
 */
export async function spawnService(name: string, entry: string, env: Record<string, string>, ready: SpawnOptions): Promise<Service> {
  const loader = entry.endsWith('.ts')
    ? ['--require', join(ROOT, 'node_modules/tsx/dist/preflight.cjs'), '--import', `file://${join(ROOT, 'node_modules/tsx/dist/loader.mjs')}`]
    : [];
  const child = spawn(process.execPath, [...(ready.nodeArgs ?? []), ...loader, join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ready.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const svc: Service = {
    name,
    child,
    pid: child.pid!,
    output: () => out,
    stop: () => stopChild(child),
  };
  services.add(svc);
  child.once('exit', () => services.delete(svc));
  const until = Date.now() + (ready.timeoutMs ?? 60_000);
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited:\n${out}`);
    if (ready.log && out.includes(ready.log)) return svc;
    if (ready.port && (await httpCall(`http://127.0.0.1:${ready.port}/health`, 'GET').then((r) => r.status === 200, () => false))) return svc;
    await sleep(100);
  }
  await svc.stop();
  throw new Error(`${name} did not start:\n${out}`);
}

/** SIGTERM (graceful shutdown), SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 8_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      res();
    });
    child.kill('SIGTERM');
  });
}

/** Run `fn` at cleanup (after every service is stopped), last registered first. */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

let cleaning: Promise<void> | null = null;

/** Stop every service started here, then run the cleanups. Safe to call more than once. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...services].map((s) => s.stop()));
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch((e: Error) => console.error(`cleanup: ${e.message}`));
  })();
  return cleaning;
}

/**
 * Run a benchmark's main: cleanup on success, on error, on Ctrl-C / SIGTERM, and a hard deadline
 * after which everything is stopped whatever it is doing.
 */
export function runMain(main: () => Promise<void>, opts: { deadlineMs?: number } = {}): void {
  let exiting = false;
  const bail = (code: number, why?: unknown) => {
    if (exiting) return;
    exiting = true;
    if (why) console.error(why);
    // Whatever happens, the process goes within 20 s: SIGKILL what is still there.
    setTimeout(() => {
      for (const s of services) s.child.kill('SIGKILL');
      process.exit(code);
    }, 20_000).unref();
    void cleanup().finally(() => process.exit(code));
  };
  // `on`, not `once`: a Ctrl-C often arrives twice (from the terminal and relayed by tsx), and a
  // second one must not kill the process before its cleanup has run.
  process.on('SIGINT', () => bail(130, 'interrupted'));
  process.on('SIGTERM', () => bail(143, 'terminated'));
  process.on('uncaughtException', (e) => bail(1, e));
  // The parent of spawned children must not die silently: a last synchronous SIGKILL.
  process.once('exit', () => {
    for (const s of services) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  });
  if (opts.deadlineMs) setTimeout(() => bail(2, `deadline of ${opts.deadlineMs} ms reached`), opts.deadlineMs).unref();
  main().then(
    () => bail(0),
    (e) => bail(1, e),
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Peak resident set size of each process (name → pid), in bytes, sampled every `everyMs` from now
 * until the returned function is called (it returns the peaks).
 */
export function rssPeaks(pids: Record<string, number>, everyMs = 200): () => Record<string, number> {
  const peak: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids)) {
      try {
        const r = rssOf(pid);
        if (!(r <= peak[name])) peak[name] = r;
      } catch {
        // exited meanwhile
      }
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

/** CPU seconds (user + system) a process has used so far (Linux /proc). */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100/s)
  } catch {
    return NaN;
  }
}
