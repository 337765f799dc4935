import type { IncomingMessage } from 'node:http';
import { Forbidden, Unauthorized, type Principal } from '@tessera/kit';
import { createAccess, inScope } from './access';

const access = createAccess({
  OPERATOR_CLAIM: 'roles',
  OPERATOR_ROLE: 'operator',
  SERVICE_KEY: 'service-key-0123456789',
  INGEST_KEYS: new Map([['key-of-app1-0123456789', 'app1']]),
});
const principal = (claims: Record<string, unknown>, apps: Principal['apps'] = ['app1']): Principal => ({ sub: 'op', apps, claims: { sub: 'op', ...claims }, anonymous: false });
const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe('operatorScope', () => {
  it("is the token's apps when its role claim holds the operator role, as an array or a string", () => {
    expect(access.operatorScope(principal({ roles: ['viewer', 'operator'] }))).toEqual(['app1']);
    expect(access.operatorScope(principal({ roles: 'viewer operator' }, '*'))).toBe('*');
  });
  it('refuses anyone else', () => {
    expect(() => access.operatorScope(principal({ roles: ['viewer'] }))).toThrow(Forbidden);
    expect(() => access.operatorScope(principal({ roles: 'operators' }))).toThrow(Forbidden);
    expect(() => access.operatorScope(principal({ role: 'operator' }))).toThrow(Forbidden);
    expect(() => access.operatorScope(undefined)).toThrow(Unauthorized);
  });
  it('lets the development stand-in (auth disabled) see everything', () => {
    expect(access.operatorScope({ sub: 'dev-user', apps: '*', claims: { sub: 'dev-user' }, anonymous: true })).toBe('*');
  });
});

describe('ingestScope', () => {
  it('takes the service key for any app and an ingest key for its own', () => {
    expect(access.ingestScope(req({ 'x-tessera-service-key': 'service-key-0123456789' }))).toBe('*');
    expect(access.ingestScope(req({ 'x-ingest-key': 'key-of-app1-0123456789' }))).toEqual(['app1']);
  });
  it('refuses wrong or missing keys', () => {
    expect(() => access.ingestScope(req({ 'x-tessera-service-key': 'service-key-0123456780' }))).toThrow(Unauthorized);
    expect(() => access.ingestScope(req({ 'x-ingest-key': 'key-of-app2-0123456789' }))).toThrow(Unauthorized);
    expect(() => access.ingestScope(req({}))).toThrow(Unauthorized);
  });
  it('says what it received and what it needs, never the key itself', () => {
    const refusal = (headers: Record<string, string>, a = access) => {
      try {
        a.ingestScope(req(headers));
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('taken');
    };
    expect(refusal({})).toMatch(/received no x-ingest-key header; send your app's ingest key in the x-ingest-key header/);
    // Through the gateway a client's service key never arrives: the message says why.
    expect(refusal({})).toMatch(/x-tessera-service-key.*gateway.*removes it/);
    expect(refusal({ authorization: 'Bearer abc' })).toMatch(/received an Authorization header and no ingest key \(a user token does not ingest\)/);
    expect(refusal({ 'x-ingest-key': 'key-of-app2-0123456789' })).toMatch(/the x-ingest-key received is not the key of any app/);
    expect(refusal({ 'x-ingest-key': 'key-of-app2-0123456789' })).not.toContain('key-of-app2');
    expect(refusal({ 'x-tessera-service-key': 'service-key-0123456780' })).toMatch(/not this deployment's service key/);
    const none = createAccess({ OPERATOR_CLAIM: 'roles', OPERATOR_ROLE: 'operator', SERVICE_KEY: 'service-key-0123456789', INGEST_KEYS: new Map() });
    expect(refusal({}, none)).toMatch(/this service has no ingest keys: set INGEST_KEYS=<app_id>:<key>/);
  });
});

it('keeps sessions without an app to the scope of every app', () => {
  expect(inScope('*', null)).toBe(true);
  expect(inScope(['app1'], null)).toBe(false);
  expect(inScope(['app1'], 'app2')).toBe(false);
});
