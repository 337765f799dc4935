import { DOWN_FOR_MS, ServerPool, type Instance } from './upstreams';

const inst = (name: string): Instance => ({ base: new URL(`http://${name}:1`), agent: undefined as never, host: `${name}:1`, downUntil: 0 });
const names = (list: Instance[]) => list.map((i) => i.base.hostname).join(' ');

describe('ServerPool', () => {
  it('starts each request at the next instance in turn', () => {
    const pool = new ServerPool('observability', [inst('a'), inst('b'), inst('c')]);
    expect([names(pool.order()), names(pool.order()), names(pool.order()), names(pool.order())]).toEqual(['a b c', 'b c a', 'c a b', 'a b c']);
  });

  it('tries an instance that refused last, for a while', () => {
    const [a, b, c] = [inst('a'), inst('b'), inst('c')];
    const pool = new ServerPool('observability', [a, b, c]);
    pool.markDown(a, 1_000);
    expect([names(pool.order(1_001)), names(pool.order(1_001)), names(pool.order(1_001))]).toEqual(['b c a', 'b c a', 'c b a']);
    // Then it takes its turn again.
    expect(names(pool.order(1_000 + DOWN_FOR_MS))).toBe('a b c');
  });

  it('is not deployed without instances', () => {
    expect(new ServerPool('bridge', []).deployed).toBe(false);
    expect(new ServerPool('bridge', [inst('a')]).deployed).toBe(true);
  });
});
