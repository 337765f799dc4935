/**
 * Summarise a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. `runtime.ts --cpu-prof`):
 * self time by package / source file and by function, busiest first.
 *
 *   npx tsx tools/bench/profile-summary.ts tmp/bench-prof/CPU.….cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
const top = Number(topArg ?? 25);
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));

const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self.entries()].filter(([id]) => ['(idle)', '(program)'].includes(byId.get(id)!.callFrame.functionName)).reduce((a, [, v]) => a + v, 0);

function where(url: string): string {
  if (!url) return '(native/vm)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 13).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const m = /\/work\/main\/(.*)$/.exec(url.replace('file://', ''));
  return m ? m[1] : url;
}

const byWhere = new Map<string, number>();
const byFn = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const special = /^\((idle|program|garbage collector)\)$/.test(n.callFrame.functionName);
  const w = special ? n.callFrame.functionName : where(n.callFrame.url);
  byWhere.set(w, (byWhere.get(w) ?? 0) + t);
  const f = `${n.callFrame.functionName || '(anonymous)'}  ${w}:${n.callFrame.lineNumber + 1}`;
  byFn.set(f, (byFn.get(f) ?? 0) + t);
}
// Inclusive time: each sample counts once for every distinct function on its stack.
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (n: Node) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const inclusive = new Map<string, number>();
for (let i = 0; i < p.samples.length; i++) {
  const seen = new Set<string>();
  for (let id: number | undefined = p.samples[i]; id !== undefined; id = parent.get(id)) {
    const n = byId.get(id)!;
    if (/^\((idle|program|root)\)$/.test(n.callFrame.functionName)) continue;
    seen.add(keyOf(n));
  }
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + (p.timeDeltas[i] ?? 0));
}
const ms = (us: number) => (us / 1000).toFixed(0).padStart(7);
const share = (us: number) => `${((us / (total - idle)) * 100).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s wall, ${(total / 1e6).toFixed(1)} s sampled, ${((total - idle) / 1e6).toFixed(1)} s busy`);
console.log('\nself time by package / file (share of busy):');
for (const [w, t] of [...byWhere].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(t)} ms ${share(t)}  ${w}`);
console.log('\nself time by function:');
for (const [f, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(t)} ms ${share(t)}  ${f}`);
console.log('\ninclusive time by function (self + callees):');
for (const [f, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top * 2)) console.log(`${ms(t)} ms ${share(t)}  ${f}`);
