import { z } from 'zod';
import { buildOpenApi, mergeOpenApi } from './openapi';
import { AppId } from './common/ids';

const doc = buildOpenApi({
  title: 'Test',
  version: '1.0.0',
  routes: [
    {
      method: 'post',
      path: '/api/apps/{app_id}/things',
      summary: 'Create a thing',
      access: 'operator',
      params: z.object({ app_id: AppId }),
      query: z.object({ dry_run: z.string().optional() }),
      body: z.object({ name: z.string().min(1) }),
      responses: { 201: { description: 'Created', schema: z.object({ id: z.string() }) } },
    },
    { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'OK' } } },
  ],
}) as any;

describe('buildOpenApi', () => {
  it('describes parameters, body and responses from the schemas', () => {
    const op = doc.paths['/api/apps/{app_id}/things'].post;
    expect(doc.openapi).toBe('3.1.0');
    expect(op.parameters).toEqual([
      expect.objectContaining({ name: 'app_id', in: 'path', required: true }),
      expect.objectContaining({ name: 'dry_run', in: 'query', required: false }),
    ]);
    expect(op.requestBody.content['application/json'].schema).toMatchObject({ type: 'object', required: ['name'] });
    expect(op.responses['201'].content['application/json'].schema).toMatchObject({ properties: { id: { type: 'string' } } });
  });

  it("writes each route's access rule, and no security requirement on a public one", () => {
    expect(doc.paths['/api/apps/{app_id}/things'].post).toMatchObject({ 'x-tessera-access': 'operator', security: [{ bearer: [] }] });
    expect(doc.paths['/health'].get).toMatchObject({ 'x-tessera-access': 'public', security: [] });
  });

  it('gives every operation the shared error body as its default response', () => {
    const op = doc.paths['/api/apps/{app_id}/things'].post;
    const schema = op.responses.default.content['application/json'].schema;
    const body = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema;
    expect(body).toMatchObject({ properties: { error: { required: ['code', 'message'] } }, required: ['error'] });
  });

  // Named schemas (`.meta({ id })`, e.g. ErrorBody) are hoisted into components.schemas.
  it('every $ref resolves against the document root', () => {
    const refs: string[] = [];
    JSON.stringify(doc, (k, v) => (k === '$ref' ? (refs.push(v), v) : v));
    for (const ref of refs) {
      const target = ref
        .replace(/^#\//, '')
        .split('/')
        .reduce((node: any, part) => node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
      expect({ ref, resolved: target !== undefined }).toEqual({ ref, resolved: true });
    }
  });

  it('requires a bearer token unless a route says otherwise', () => {
    expect(doc.paths['/api/apps/{app_id}/things'].post.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/health'].get.security).toEqual([]);
  });

  it('mergeOpenApi prefixes each service document', () => {
    const merged = mergeOpenApi('All', '1', [{ prefix: '/runtime', doc }, { doc }]) as any;
    expect(Object.keys(merged.paths).sort()).toEqual(['/api/apps/{app_id}/things', '/health', '/runtime/api/apps/{app_id}/things', '/runtime/health']);
  });
});
