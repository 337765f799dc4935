/**
 * The stack definition as the tests and benchmarks read it: the processes `npm start` runs
 * (tools/scripts/services.ts, the one list) and the ones a deployment may add.
 */
// Test-only code (exported through the kit's testing entry, never its package index): it reads
// the repository's one list of processes, which npm start owns.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { DEMO_PRICE_OVERRIDES, SERVICES, type ServiceEntry } from '../../../tools/scripts/services';

export { DEMO_PRICE_OVERRIDES, SERVICES, type ServiceEntry };

/** Processes a deployment may run that `npm start` does not (started by tests and benchmarks). */
const EXTRA: ServiceEntry[] = [{ name: 'observability-worker', app: 'observability', entry: 'apps/observability/src/worker.ts' }];

/** A process's entry file (from the repository root), by its name in the stack. */
export function entryOf(name: string): string {
  const s = SERVICES.find((x) => x.name === name) ?? EXTRA.find((x) => x.name === name);
  if (!s) throw new Error(`no process named "${name}" in the stack (tools/scripts/services.ts, or EXTRA here)`);
  return s.entry;
}
