import { estimate, retryAfterMs, retryAfterSeconds, windowAt } from './sliding-window';

describe('sliding window', () => {
  it('places a time in its fixed window', () => {
    expect(windowAt(125_000, 60_000)).toEqual({ index: 2, elapsedMs: 5_000 });
  });

  it('weighs the previous window by the share still inside the sliding window', () => {
    expect(estimate(100, 0, 0, 60_000)).toBe(100);
    expect(estimate(100, 10, 30_000, 60_000)).toBe(60);
    expect(estimate(100, 10, 60_000, 60_000)).toBe(10);
  });

  it('tells a refused client how long to wait', () => {
    // Current window full at 10 s in: 50 s to its end, then as long as its weight stays at the limit.
    expect(retryAfterMs(10, 60_000, 10_000, 0, 10)).toBe(50_001);
    // Previous window of 20 at 30 s in: 20·(30−t)/60 < 10 - 0 once t > 0.
    expect(retryAfterMs(10, 60_000, 30_000, 20, 0)).toBe(1);
    // Previous 20, current 5 at 10 s: needs 20·(50−t)/60 + 5 < 10 → t > 35 s.
    expect(retryAfterMs(10, 60_000, 10_000, 20, 5)).toBe(35_001);
    expect(retryAfterSeconds(35_001)).toBe(36);
    expect(retryAfterSeconds(1)).toBe(1);
  });
});
