import type { Usage } from '@tessera/contracts';
import { addUsage } from './run-turn';

describe('addUsage: a turn’s usage from its model calls', () => {
  it('sums every count, and a part once some call reported it, never inventing one no call reported', () => {
    const total: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    addUsage(total, { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
    expect(total).toEqual({ prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 });
    addUsage(total, { prompt_tokens: 5101, completion_tokens: 412, total_tokens: 5513, cache_read_tokens: 3200, cache_write_tokens: 1880 });
    addUsage(total, { prompt_tokens: 75, completion_tokens: 1186, total_tokens: 1261, cache_read_tokens: 0, reasoning_tokens: 1024 });
    expect(total).toEqual({ prompt_tokens: 5186, completion_tokens: 1600, total_tokens: 6786, cache_read_tokens: 3200, cache_write_tokens: 1880, reasoning_tokens: 1024 });
  });
});
