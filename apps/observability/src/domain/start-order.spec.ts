import fc from 'fast-check';
import { startOrder, type StartKey } from './start-order';

const T = 1_764_000_000_000;
const key = (seq: number, at: number, spanId: string | null = null, parentSpanId: string | null = null, nanos: string | null = null): StartKey => ({ seq, at, nanos, spanId, parentSpanId });

describe('startOrder', () => {
  it('orders by start time, whatever order the events arrived in', () => {
    expect(startOrder([key(1, T + 30), key(2, T + 10), key(3, T + 20)])).toEqual([2, 3, 1]);
  });

  it('puts a span before the spans it started in the same millisecond, however deep, and arrival decides the rest', () => {
    // Arrived as they ended: the chat, the tool, then the agent, then the request around them.
    const keys = [key(1, T, 'chat', 'agent'), key(2, T + 5, 'tool', 'agent'), key(3, T, 'agent', 'root'), key(4, T, 'root', null), key(5, T, 'sibling', 'root')];
    expect(startOrder(keys)).toEqual([4, 3, 5, 1, 2]);
  });

  it('reads nanoseconds where a span has them, finer than the millisecond', () => {
    const ns = (ms: number, extra: number) => String(BigInt(ms) * 1_000_000n + BigInt(extra));
    expect(startOrder([key(1, T, 'b', null, ns(T, 900)), key(2, T, 'a', null, ns(T, 100))])).toEqual([2, 1]);
  });

  it('ends on cycles and parents it never saw, and orders every seq once', () => {
    expect(startOrder([key(1, T, 'a', 'b'), key(2, T, 'b', 'a'), key(3, T, 'c', 'missing')])).toHaveLength(3);
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 5 }), span: fc.constantFrom('a', 'b', 'c', 'd', null), parent: fc.constantFrom('a', 'b', 'c', 'd', null), nanos: fc.option(fc.string(), { nil: null }) }), { maxLength: 40 }),
        (rows) => {
          const keys = rows.map((r, i) => key(i + 1, T + r.at, r.span, r.parent, r.nanos));
          const order = startOrder(keys);
          expect([...order].sort((a, b) => a - b)).toEqual(keys.map((k) => k.seq));
          // Never earlier in time after later: the milliseconds alone are always in order.
          const at = new Map(keys.map((k) => [k.seq, k.at]));
          for (let i = 1; i < order.length; i++) expect(at.get(order[i])!).toBeGreaterThanOrEqual(at.get(order[i - 1])!);
        },
      ),
    );
  });
});
