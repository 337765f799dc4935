import { z } from 'zod';
import { validate } from '@readme/openapi-parser';
import { API_TAGS, buildOpenApi, mergeOpenApi, operationIdOf, type RouteSpec } from './openapi';
import { AppId } from './common/ids';

const routes: RouteSpec[] = [
  {
    method: 'post',
    path: '/api/apps/{app_id}/things',
    summary: 'Create a thing',
    description: 'A thing is **created** in the app.',
    tags: ['agents'],
    access: 'operator',
    params: z.object({ app_id: AppId }),
    query: z.object({ dry_run: z.string().optional() }),
    body: z.object({ name: z.string().min(1) }),
    examples: { minimal: { summary: 'Just a name', value: { name: 'first' } } },
    responses: { 201: { description: 'Created', schema: z.object({ id: z.string() }) } },
  },
  { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'OK' } } },
  { method: 'post', path: '/events', summary: 'Ingest', tags: ['ingest'], access: 'ingest', body: z.object({ n: z.number() }), responses: { 202: { description: 'accepted' } } },
  { method: 'get', path: '/internal/things', summary: 'For services', tags: ['internal'], access: 'service', responses: { 200: { description: 'OK' } } },
];
const doc = buildOpenApi({ title: 'Test', version: '1.0.0', routes }) as any;

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
    expect(Object.keys(merged.paths).sort()).toEqual(['/api/apps/{app_id}/things', '/events', '/health', '/runtime/api/apps/{app_id}/things', '/runtime/events', '/runtime/health']);
  });

  it('mergeOpenApi leaves out routes for services alone and the service key', () => {
    const merged = mergeOpenApi('All', '1', [{ doc }]) as any;
    expect(merged.paths['/internal/things']).toBeUndefined();
    expect(Object.keys(merged.components.securitySchemes).sort()).toEqual(['bearer', 'ingestKey']);
    expect(merged.paths['/events'].post.security).toEqual([{ ingestKey: [] }]);
    // The service's own document keeps both, for the services that call it.
    expect(doc.paths['/events'].post.security).toEqual([{ ingestKey: [] }, { serviceKey: [] }]);
    expect(doc.components.securitySchemes.ingestKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-ingest-key' });
  });
});

describe('operation ids, descriptions, examples, tags, servers', () => {
  it('derives operationId from method and path', () => {
    expect(operationIdOf('post', '/api/chats/{app_id}/{workflow_name}/start')).toBe('postApiChatsByAppIdByWorkflowNameStart');
    expect(operationIdOf('get', '/api/v1/mission-ally/missions')).toBe('getApiV1MissionAllyMissions');
    expect(doc.paths['/api/apps/{app_id}/things'].post.operationId).toBe('postApiAppsByAppIdThings');
  });

  it('mergeOpenApi names each operation by its merged path, numbering two that would meet', () => {
    const a = buildOpenApi({ title: 'a', version: '1', routes: [{ method: 'get', path: '/a-b', summary: 'x', access: 'user', responses: { 200: { description: 'ok' } } }] });
    const b = buildOpenApi({ title: 'b', version: '1', routes: [{ method: 'get', path: '/a_b', summary: 'y', access: 'user', responses: { 200: { description: 'ok' } } }] });
    const merged = mergeOpenApi('All', '1', [{ doc: a }, { prefix: '/svc', doc }, { doc: b }]) as any;
    const ids = Object.values(merged.paths).flatMap((item: any) => Object.values(item).map((op: any) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    expect(merged.paths['/a-b'].get.operationId).toBe('getAB');
    expect(merged.paths['/a_b'].get.operationId).toBe('getAB2');
    expect(merged.paths['/svc/api/apps/{app_id}/things'].post.operationId).toBe('postSvcApiAppsByAppIdThings');
  });

  it('writes the description and the request examples', () => {
    const op = doc.paths['/api/apps/{app_id}/things'].post;
    expect(op.description).toBe('A thing is **created** in the app.');
    expect(op.requestBody.content['application/json'].examples).toEqual({ minimal: { summary: 'Just a name', value: { name: 'first' } } });
    expect(doc.paths['/health'].get).not.toHaveProperty('description');
  });

  it('refuses an example that does not match its body', () => {
    const bad = { ...routes[0], examples: { empty: { summary: 'no name', value: { name: '' } } } };
    expect(() => buildOpenApi({ title: 'x', version: '1', routes: [bad] })).toThrow(/POST \/api\/apps\/\{app_id\}\/things: example "empty" does not match its body: name:/);
    const noBody = { ...routes[1], examples: { x: { summary: 'x', value: {} } } };
    expect(() => buildOpenApi({ title: 'x', version: '1', routes: [noBody] })).toThrow(/has no body/);
  });

  it('lists the tags in use, described', () => {
    expect(doc.tags).toEqual([
      { name: 'agents', description: API_TAGS.agents },
      { name: 'ingest', description: API_TAGS.ingest },
      { name: 'internal', description: API_TAGS.internal },
    ]);
    const merged = mergeOpenApi('All', '1', [{ doc }]) as any;
    expect(merged.tags.map((t: { name: string }) => t.name)).toEqual(['agents', 'ingest']);
  });

  it('servers: relative by default, or as given', () => {
    expect((mergeOpenApi('All', '1', [{ doc }]) as any).servers).toEqual([{ url: '/' }]);
    expect((mergeOpenApi('All', '1', [{ doc }], { servers: [{ url: 'https://api.example.com' }] }) as any).servers).toEqual([{ url: 'https://api.example.com' }]);
  });

  it('a service document and the merged one are valid OpenAPI 3.1 (@readme/openapi-parser)', async () => {
    for (const d of [doc, mergeOpenApi('All', '1', [{ doc }], { description: 'all' })]) {
      const result = await validate(structuredClone(d));
      expect(result).toMatchObject({ valid: true, specification: 'OpenAPI' });
    }
    // The validator does fail: a parameter in no place OpenAPI knows, a reference to nothing.
    const broken = structuredClone(doc);
    broken.paths['/health'].get.parameters = [{ name: 'a', in: 'nowhere', schema: { type: 'string' } }];
    expect((await validate(broken)).valid).toBe(false);
    const dangling = structuredClone(doc);
    dangling.paths['/health'].get.responses['200'].content = { 'application/json': { schema: { $ref: '#/components/schemas/Nothing' } } };
    expect((await validate(dangling)).valid).toBe(false);
  });
});
