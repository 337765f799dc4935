import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * What /proc says about a process: its start time (clock ticks since boot, field 22 of `stat`)
 * tells a process apart from a later one that got the same pid; its group is what we kill.
 */
export interface ProcIdentity {
  pid: number;
  pgid: number;
  startTicks: number;
}

export function procIdentity(pid: number): ProcIdentity | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z') return null;
    return { pid, pgid: Number(rest[2]), startTicks: Number(rest[19]) };
  } catch {
    return null;
  }
}

/** Processes of a group still running that started no earlier than the group's leader. */
export function groupMembers(pgid: number, notBeforeTicks: number): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const id = procIdentity(Number(name));
    if (id && id.pgid === pgid && id.startTicks >= notBeforeTicks) out.push(id.pid);
  }
  return out;
}

/** SIGKILL to a whole process group; false when nothing of it was left. */
export function killGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while the process runs (not a zombie). */
export function isRunning(pid: number): boolean {
  return procIdentity(pid) !== null;
}

/** Whether a TCP port can be bound on `host` right now (a taken port is skipped, whoever holds it). */
export function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}
