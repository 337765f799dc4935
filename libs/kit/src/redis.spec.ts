import fc from 'fast-check';
import { redactText } from './logger';
import { parseRedisUrl, redisUrlWithPassword } from './redis';

describe('parseRedisUrl: what REDIS_URL names', () => {
  it('a single Redis is its URL, as ioredis takes it', () => {
    expect(parseRedisUrl('redis://:pw@127.0.0.1:6379/2')).toEqual({ kind: 'single', url: 'redis://:pw@127.0.0.1:6379/2' });
    expect(parseRedisUrl('rediss://cache.example:6380')).toEqual({ kind: 'single', url: 'rediss://cache.example:6380' });
  });

  it('a cluster: every seed node, the credentials decoded, TLS from the scheme', () => {
    expect(parseRedisUrl('redis+cluster://app:p%40ss%3Aw@10.0.0.1:7001,10.0.0.2:7002,[::1]:7003')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7001 },
        { host: '10.0.0.2', port: 7002 },
        { host: '::1', port: 7003 },
      ],
      username: 'app',
      password: 'p@ss:w',
      tls: false,
    });
    expect(parseRedisUrl('rediss+cluster://:pw@node:6379')).toMatchObject({ kind: 'cluster', tls: true, password: 'pw', username: undefined });
  });

  it('a Sentinel group: the sentinels, the primary by name, its database and the sentinels’ own password', () => {
    expect(parseRedisUrl('redis+sentinel://:pw@s1:26379,s2:26379/mymaster/3?sentinelPassword=spw')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      username: undefined,
      password: 'pw',
      sentinelPassword: 'spw',
      db: 3,
      tls: false,
    });
  });

  it.each([
    ['http://127.0.0.1:6379', /must be redis:\/\//],
    ['redis+cluster://127.0.0.1', /node 1 of 1 is not host:port/],
    ['redis+cluster://a:1,b:99999', /node 2 of 2 is not host:port/],
    ['redis+cluster://a:1/2', /no database number/],
    ['redis+sentinel://s1:26379', /names its primary/],
    ['redis+sentinel://s1:26379/m/x', /database after the master name/],
    ['redis://[bad', /not a valid redis:\/\/ URL/],
  ])('%s is refused, naming what is wrong', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it('any list of nodes and any password read back as written; the password never shows in the error or the URL as logs redact it', () => {
    const host = fc.oneof(fc.ipV4(), fc.domain());
    const node = fc.record({ host, port: fc.integer({ min: 1, max: 65535 }) });
    fc.assert(
      fc.property(fc.array(node, { minLength: 1, maxLength: 6 }), fc.string({ minLength: 1, maxLength: 30 }), (nodes, password) => {
        const url = `redis+cluster://:${encodeURIComponent(password)}@${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
        expect(parseRedisUrl(url)).toEqual({ kind: 'cluster', nodes, username: undefined, password, tls: false });
        expect(redactText(url)).not.toContain(`:${encodeURIComponent(password)}@`);
      }),
    );
  });

  it('whatever the string, it parses or throws an Error without the text after the scheme’s credentials', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (tail) => {
        const url = `redis+cluster://:SECRET-PW@${tail}`;
        try {
          parseRedisUrl(url);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message).not.toContain('SECRET-PW');
        }
      }),
    );
  });
});

describe('redisUrlWithPassword: REDIS_PASSWORD_FILE on any form', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://:p%40w@127.0.0.1:6379'],
    ['redis+cluster://a:1,b:2', 'redis+cluster://:p%40w@a:1,b:2'],
    ['redis+cluster://old@a:1', 'redis+cluster://old:p%40w@a:1'],
    ['redis+sentinel://:old@s:26379/m', 'redis+sentinel://:p%40w@s:26379/m'],
  ])('%s', (url, expected) => {
    expect(redisUrlWithPassword(url, 'p@w')).toBe(expected);
    expect(parseRedisUrl(expected)).toMatchObject(parseRedisUrl(expected).kind === 'single' ? {} : { password: 'p@w' });
  });
});
