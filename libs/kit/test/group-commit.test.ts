import fc from 'fast-check';
import { GroupCommit, type Waiting } from '../src';

type Item = { n: number; kind?: string };

/** A GroupCommit whose writes the test finishes by hand; what each write was given is recorded. */
function harness(opts: { maxInFlight?: number; maxSize?: number; joins?: (a: Item, b: Item) => boolean; fail?: (group: Item[]) => boolean } = {}) {
  const writes: { group: number[]; finish: () => void }[] = [];
  const commits = new GroupCommit<Item, string>({
    maxInFlight: opts.maxInFlight ?? 1,
    maxSize: opts.maxSize ?? 100,
    sizeOf: (i) => i.n,
    joins: opts.joins,
    write: (group: Waiting<Item, string>[]) =>
      new Promise<void>((resolve, reject) => {
        writes.push({
          group: group.map((w) => w.n),
          finish: () => {
            if (opts.fail?.(group)) return reject(new Error('refused'));
            for (const w of group) w.resolve(`stored ${w.n}`);
            resolve();
          },
        });
      }),
  });
  return { commits, writes };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('a lone item goes at once; what arrives during a write goes together in the next one, in order, each settled with its own result', async () => {
    const { commits, writes } = harness();
    const first = commits.add({ n: 1 });
    expect(writes.map((w) => w.group)).toEqual([[1]]);
    const later = [commits.add({ n: 2 }), commits.add({ n: 3 }), commits.add({ n: 4 })];
    expect(writes).toHaveLength(1);
    writes[0].finish();
    expect(await first).toBe('stored 1');
    await tick();
    expect(writes.map((w) => w.group)).toEqual([[1], [2, 3, 4]]);
    writes[1].finish();
    expect(await Promise.all(later)).toEqual(['stored 2', 'stored 3', 'stored 4']);
  });

  it('keeps maxInFlight writes going, a group no larger than maxSize (a larger item alone), and items that may not join in a group of their own', async () => {
    const { commits, writes } = harness({ maxInFlight: 2, maxSize: 5, joins: (a, b) => a.kind === b.kind });
    void commits.add({ n: 1 });
    void commits.add({ n: 1 });
    expect(writes.map((w) => w.group)).toEqual([[1], [1]]);
    for (const i of [{ n: 3 }, { n: 2 }, { n: 1 }, { n: 9 }, { n: 1, kind: 'other' }, { n: 1 }]) void commits.add(i);
    writes[0].finish();
    await tick();
    writes[1].finish();
    await tick();
    expect(writes.slice(2).map((w) => w.group)).toEqual([[3, 2], [1]]);
    writes[2].finish();
    writes[3].finish();
    await tick();
    expect(writes.slice(4).map((w) => w.group)).toEqual([[9], [1]]);
  });

  it('a write that throws rejects the items it did not settle, and the next group still goes', async () => {
    const { commits, writes } = harness({ fail: (g) => g.some((i) => i.n === 2) });
    void commits.add({ n: 1 });
    const refused = [commits.add({ n: 2 }), commits.add({ n: 3 })];
    writes[0].finish();
    await tick();
    expect(writes[1].group).toEqual([2, 3]);
    const after = commits.add({ n: 4 }); // arrives while [2, 3] is being written
    writes[1].finish();
    for (const r of refused) await expect(r).rejects.toThrow('refused');
    await tick();
    expect(writes[2].group).toEqual([4]);
    writes[2].finish();
    expect(await after).toBe('stored 4');
  });

  it('property: every item is written once, in the order added, in groups within maxSize', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 3 }), async (sizes, maxInFlight) => {
        const { commits, writes } = harness({ maxInFlight, maxSize: 8 });
        const all = sizes.map((n) => commits.add({ n }));
        for (let done = 0; done < writes.length || writes.length === 0; done++) {
          writes[done]?.finish();
          await tick();
        }
        await Promise.all(all);
        expect(writes.flatMap((w) => w.group)).toEqual(sizes);
        for (const w of writes) if (w.group.length > 1) expect(w.group.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(8);
      }),
      { numRuns: 50 },
    );
  });
});
