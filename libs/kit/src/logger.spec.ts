import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, REDACTED, redactText } from './logger';
import { signToken } from './auth';

/** A kit logger whose formatted output lines are captured (what would reach stdout). */
function captured() {
  const lines: string[] = [];
  const logger = createLogger('redaction-spec', 'debug');
  logger.clear();
  logger.add(
    new winston.transports.Stream({
      stream: new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    }),
  );
  return { logger, out: () => lines.join('') };
}

describe('logger redaction', () => {
  let jwt: string;
  beforeAll(async () => {
    jwt = await signToken('s'.repeat(32), { sub: 'user-7' });
    expect(jwt).toMatch(/^eyJ/);
  });

  it('hides secret-named fields at any depth and keeps the rest', () => {
    const { logger, out } = captured();
    logger.info('login attempt', {
      user_id: 'user-7',
      password: 'hunter2-password',
      token: 'tok-plain-123',
      apiKey: 'sk-live-abcdef',
      client_secret: 'client-secret-value',
      request: { headers: { authorization: 'Bearer header-bearer-999', cookie: 'session=cookie-value-42', 'x-request-id': 'req-1' } },
      attempts: [{ refresh_token: 'refresh-xyz-777' }],
    });
    const text = out();
    for (const secret of ['hunter2-password', 'tok-plain-123', 'sk-live-abcdef', 'client-secret-value', 'header-bearer-999', 'cookie-value-42', 'refresh-xyz-777'])
      expect(text).not.toContain(secret);
    const line = JSON.parse(text);
    expect(line).toMatchObject({ level: 'info', message: 'login attempt', service: 'redaction-spec', user_id: 'user-7', password: REDACTED });
    expect(line.request.headers).toEqual({ authorization: REDACTED, cookie: REDACTED, 'x-request-id': 'req-1' });
  });

  it('hides access_token and other credentials in URLs, wherever the URL appears', () => {
    const { logger, out } = captured();
    logger.http('request', { url: '/chats/c1/ws?access_token=url-token-555&after=3', status: 101 });
    logger.warn('upstream failed for /x?api_key=url-apikey-666 and https://h/?password=url-pass-888');
    const text = out();
    expect(text).not.toMatch(/url-token-555|url-apikey-666|url-pass-888/);
    expect(text).toContain(`access_token=${REDACTED}&after=3`);
  });

  it('hides a password embedded in a connection URL', () => {
    const { logger, out } = captured();
    logger.info('connecting', { database: 'postgresql://tessera:db-pass-1234@db:5432/tessera?schema=runtime', redis: 'redis://:redis-pass-5678@cache:6379/0' });
    const text = out();
    expect(text).not.toMatch(/db-pass-1234|redis-pass-5678/);
    expect(text).toContain('db:5432/tessera');
  });

  it('hides Bearer credentials and bare JWTs in messages, errors and stacks', () => {
    const { logger, out } = captured();
    logger.info(`proxying with Authorization: Bearer opaque-bearer-321`);
    logger.info(`token seen in text ${jwt} end`);
    logger.error('request failed', { err: new Error(`jwt rejected: ${jwt}`) });
    logger.error(new Error(`direct error with ${jwt}`));
    const text = out();
    expect(text).not.toContain('opaque-bearer-321');
    expect(text).not.toContain(jwt);
    // No part of the token's signed payload survives either.
    expect(text).not.toContain(jwt.split('.')[1]);
    expect(text).toContain('jwt rejected');
    expect(text).toContain('direct error with');
  });

  it('redactText leaves ordinary text alone', () => {
    const s = 'GET /chats?limit=20 took 12 ms for user-7';
    expect(redactText(s)).toBe(s);
  });

  it('LOG_LEVEL=silent prints nothing, errors included', () => {
    const lines: string[] = [];
    const logger = createLogger('quiet', 'silent');
    logger.clear();
    logger.add(new winston.transports.Stream({ stream: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) }));
    logger.error('boom');
    logger.info('hello');
    expect(lines).toEqual([]);
  });
});
