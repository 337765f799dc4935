import { ErrorBody, ErrorCode } from './errors';
import { HealthReply } from './health';
import { AppId, WorkflowName } from './ids';

describe('ErrorBody', () => {
  it('is { error: { code, message, details? } }', () => {
    expect(ErrorBody.parse({ error: { code: ErrorCode.NotFound, message: 'no chat c1' } })).toEqual({ error: { code: 'NOT_FOUND', message: 'no chat c1' } });
    expect(ErrorBody.safeParse({ code: 'NOT_FOUND', message: 'flat' }).success).toBe(false);
    expect(ErrorBody.safeParse({ error: { message: 'no code' } }).success).toBe(false);
  });

  it('error codes are distinct', () => {
    const codes = Object.values(ErrorCode);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('path ids', () => {
  it.each(['app-1', 'tenant.prod', 'user@example.com', 'a:b_c'])('accepts %s', (id) => {
    expect(AppId.safeParse(id).success).toBe(true);
  });

  it.each(['', 'a/b', '../etc', 'has space', 'x'.repeat(129), 'new\nline'])('refuses %j', (id) => {
    expect(AppId.safeParse(id).success).toBe(false);
  });

  it('workflow names are a narrower alphabet', () => {
    expect(WorkflowName.safeParse('support_v2').success).toBe(true);
    expect(WorkflowName.safeParse('support.v2').success).toBe(false);
  });
});

it('HealthReply accepts a reply with checks and refuses an unknown status', () => {
  expect(HealthReply.safeParse({ status: 'ok', service: 's', uptime_s: 1, checks: { redis: { status: 'down', error: 'x' } } }).success).toBe(true);
  expect(HealthReply.safeParse({ status: 'fine', service: 's', uptime_s: 1 }).success).toBe(false);
});
