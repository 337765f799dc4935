import { backoff } from './backoff';

describe('backoff', () => {
  it('starts at the base, doubles, and stops at the bound', () => {
    const delay = backoff({ baseMs: 100, maxMs: 1_000 });
    expect([0, 1, 2, 3, 4, 5].map(delay)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('stays at the bound however many attempts failed (no overflow to Infinity or NaN)', () => {
    const delay = backoff({ baseMs: 100, maxMs: 5_000 });
    expect(delay(10_000)).toBe(5_000);
    expect(delay(-1)).toBe(100);
  });

  it('grows by the factor asked for', () => {
    expect([0, 1, 2].map(backoff({ baseMs: 10, maxMs: 1_000, factor: 3 }))).toEqual([10, 30, 90]);
  });

  it('with jitter, keeps each delay in the upper half of its step', () => {
    const delay = backoff({ baseMs: 100, maxMs: 800, jitter: true });
    for (let attempt = 0; attempt < 6; attempt++) {
      const step = Math.min(800, 100 * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const d = delay(attempt);
        expect(d).toBeGreaterThanOrEqual(step / 2);
        expect(d).toBeLessThanOrEqual(step);
      }
    }
    const seen = new Set(Array.from({ length: 20 }, () => delay(3)));
    expect(seen.size).toBeGreaterThan(1);
  });
});
