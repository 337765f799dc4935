import type { NormalizedEvent } from '../domain/event';
import { firstGap } from './ingestor';

const at = (...indexes: number[]) => indexes.map((sourceIndex) => ({ sourceIndex }) as NormalizedEvent);
const none = () => false;

describe('firstGap', () => {
  it('is Infinity when the events continue what is stored', () => {
    expect(firstGap(at(5, 6, 7), 4, none)).toBe(Infinity);
    expect(firstGap(at(1, 2), 0, none)).toBe(Infinity);
    // Already stored ones overlap harmlessly.
    expect(firstGap(at(3, 4, 5), 4, none)).toBe(Infinity);
  });

  it('is the first index past a missing one', () => {
    expect(firstGap(at(6, 7), 4, none)).toBe(6);
    expect(firstGap(at(5, 6, 9, 10), 4, none)).toBe(9);
  });

  it('does not count duplicates as filling a gap', () => {
    const events = at(5, 6);
    expect(firstGap(events, 3, (e) => e.sourceIndex === 5)).toBe(6);
  });
});
