/**
 * The gateway's API documents as a client's tools read them, in front of the real services (the
 * platform as `npm start` runs it): `/openapi.json` is valid OpenAPI 3.1 to @readme/openapi-parser,
 * names every operation once, describes its tags and credentials, and its request examples are
 * accepted by their schemas and by the services; `/asyncapi.json` is valid AsyncAPI 3.0 to
 * @asyncapi/parser, and a client that opens a socket the way it says gets messages its schemas accept.
 */
import { Parser } from '@asyncapi/parser';
import { validate } from '@readme/openapi-parser';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { TOKEN_PLACES } from '@tessera/kit';
import { startPlatform, type Platform } from '@tessera/kit/platform';
import { call, TestSocket } from '@tessera/kit/testing';
import { startTestGateway, type TestGateway } from './support';

jest.setTimeout(240_000);

type Doc = Record<string, any>;
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

function operations(doc: Doc): { method: string; path: string; op: Doc }[] {
  return Object.entries<Doc>(doc.paths).flatMap(([path, item]) => Object.entries<Doc>(item).filter(([m]) => METHODS.includes(m)).map(([method, op]) => ({ method, path, op })));
}

/** A validator for `schema`, whose `#/components/...` references resolve in `doc`. */
function compile(ajv: Ajv | Ajv2020, doc: Doc, schema: unknown) {
  if (!ajv.getSchema('doc')) ajv.addSchema({ components: doc.components }, 'doc');
  return ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/')));
}

async function asyncApiProblems(doc: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(doc));
  // Severity 0 is an error, 1 a warning; the parser's note that AsyncAPI 3.1 exists is an info (2).
  return diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`);
}

describe('API documents of the whole platform', () => {
  let p: Platform;
  let openapi: Doc;
  let asyncapi: Doc;

  beforeAll(async () => {
    p = await startPlatform();
    const [o, a] = await Promise.all([call(p.url, 'GET', '/openapi.json'), call(p.url, 'GET', '/asyncapi.json')]);
    expect([o.status, a.status]).toEqual([200, 200]);
    openapi = o.json;
    asyncapi = a.json;
  });

  afterAll(async () => {
    await p?.stop();
  });

  it('/openapi.json merges every service and is valid OpenAPI 3.1 (@readme/openapi-parser)', async () => {
    expect(openapi['x-unavailable']).toEqual([]);
    const result = await validate(structuredClone(openapi) as Parameters<typeof validate>[0]);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(openapi.openapi).toBe('3.1.0');
    expect(openapi.servers).toEqual([{ url: '/', description: 'the gateway' }]);
    const paths = Object.keys(openapi.paths);
    for (const prefix of ['/api/chats/', '/api/mozaiks/', '/api/observability/', '/api/agents', '/api/documents', '/api/bridge/', '/api/v1/mission-ally/']) {
      expect({ prefix, found: paths.some((x) => x.startsWith(prefix)) }).toEqual({ prefix, found: true });
    }
    expect(openapi.paths['/asyncapi.json'].get).toMatchObject({ 'x-tessera-access': 'public', operationId: 'getAsyncapiJson', tags: ['gateway'] });
  });

  it('every operation has an operationId, none twice; every tag it uses is listed with a description', () => {
    const ops = operations(openapi);
    expect(ops.length).toBeGreaterThan(40);
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.filter((id) => typeof id !== 'string' || !/^[A-Za-z0-9]+$/.test(id))).toEqual([]);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    const listed = new Map<string, string>(openapi.tags.map((t: { name: string; description?: string }) => [t.name, t.description]));
    const used = new Set(ops.flatMap((o) => o.op.tags ?? []));
    expect([...used].filter((t) => !listed.get(t))).toEqual([]);
    expect([...listed.keys()].filter((t) => !used.has(t))).toEqual([]);
    expect(ops.filter((o) => !o.op.summary)).toEqual([]);
  });

  it('declares the credentials clients use, and nothing of the service key', async () => {
    expect(Object.keys(openapi.components.securitySchemes).sort()).toEqual(['bearer', 'ingestKey']);
    expect(openapi.components.securitySchemes.ingestKey).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-ingest-key' });
    const ops = operations(openapi);
    expect(ops.filter((o) => JSON.stringify(o.op.security ?? []).includes('serviceKey'))).toEqual([]);
    expect(ops.filter((o) => o.op['x-tessera-access'] === 'service')).toEqual([]);
    const ingest = ops.filter((o) => o.op['x-tessera-access'] === 'ingest');
    expect(ingest.map((o) => `${o.method} ${o.path}`).sort()).toEqual(['post /api/observability/events', 'post /api/observability/v1/traces']);
    for (const o of ingest) expect(o.op.security).toEqual([{ ingestKey: [] }]);
    for (const o of ops) {
      const expected = o.op['x-tessera-access'] === 'public' ? [] : o.op['x-tessera-access'] === 'ingest' ? [{ ingestKey: [] }] : [{ bearer: [] }];
      expect({ route: `${o.method} ${o.path}`, security: o.op.security }).toEqual({ route: `${o.method} ${o.path}`, security: expected });
    }
    // As documented: the ingest key alone, in its header, is how an agent posts an event.
    const posted = await call(p.url, 'POST', '/api/observability/events', {
      headers: { 'x-ingest-key': p.ingestKeys[p.appId] },
      body: { event_type: 'pre_tool', session_id: `docs-${p.appId}`, agent_name: 'docs', tool_name: 'search', tool_input: {} },
    });
    expect(posted.status).toBeLessThan(300);
  });

  it('every request example is accepted by its own schema (ajv, JSON Schema 2020-12)', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const checked: string[] = [];
    for (const { method, path, op } of operations(openapi)) {
      for (const [mediaType, content] of Object.entries<Doc>(op.requestBody?.content ?? {})) {
        for (const [name, example] of Object.entries<Doc>(content.examples ?? {})) {
          const check = compile(ajv, openapi, content.schema);
          const at = `${method} ${path} ${mediaType} ${name}`;
          expect({ at, valid: check(example.value), errors: check.errors }).toEqual({ at, valid: true, errors: null });
          checked.push(at);
        }
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining([
        'post /api/agents application/json document001',
        'post /api/agents application/json withServerDefinition',
        'post /api/mozaiks/session application/json start',
        'post /api/chats/{app_id}/{workflow_name}/start application/json start',
        'post /api/v1/mission-ally/missions application/json mission',
      ]),
    );
    // The check can fail: an example that breaks its schema is refused.
    const create = openapi.paths['/api/agents'].post.requestBody.content['application/json'];
    expect(compile(ajv, openapi, create.schema)({ ...create.examples.document001.value, name: 'not a name!' })).toBe(false);
  });

  it('the main create routes take their examples as they are', async () => {
    const user = await p.sign({ sub: `docs-user-${p.appId}`, apps: [p.appId] });
    const create = openapi.paths['/api/agents'].post.requestBody.content['application/json'].examples;
    for (const name of ['document001', 'withServerDefinition']) {
      const r = await call(p.url, 'POST', '/api/agents', { token: p.token, body: create[name].value });
      expect({ name, status: r.status, agent: r.json?.name }).toEqual({ name, status: 201, agent: create[name].value.name });
    }
    const start = openapi.paths['/api/mozaiks/session'].post.requestBody.content['application/json'].examples.start.value;
    const r = await call(p.url, 'POST', '/api/mozaiks/session', { token: user, body: start });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ workflow_name: start.workflow_name, reused: false });
    const again = await call(p.url, 'POST', '/api/mozaiks/session', { token: user, body: start });
    expect(again.json).toMatchObject({ chat_id: r.json.chat_id, reused: true });

    // The runtime's: the example's user, signed in to our app.
    const chat = openapi.paths['/api/chats/{app_id}/{workflow_name}/start'].post.requestBody.content['application/json'].examples.start.value;
    const chatUser = await p.sign({ sub: chat.user_id, apps: [p.appId] });
    const started = await call(p.url, 'POST', `/api/chats/${p.appId}/greeter/start`, { token: chatUser, body: chat });
    expect(started.status).toBe(201);
    // Mission Ally's, in our app rather than the example's.
    const mission = openapi.paths['/api/v1/mission-ally/missions'].post.requestBody.content['application/json'].examples.mission.value;
    const created = await call(p.url, 'POST', '/api/v1/mission-ally/missions', { token: p.token, body: { ...mission, app_id: p.appId } });
    expect({ status: created.status, id: created.json?.id }).toEqual({ status: 201, id: mission.id });
  });

  it('/asyncapi.json is valid AsyncAPI 3.0 (@asyncapi/parser) with the four sockets, served by the gateway itself', async () => {
    expect(asyncapi.asyncapi).toBe('3.0.0');
    expect(await asyncApiProblems(asyncapi)).toEqual([]);
    // The parser is not lenient: a message that is not there is an error.
    const broken = structuredClone(asyncapi);
    broken.operations['runtimeChat.send'].messages.push({ $ref: '#/channels/runtimeChat/messages/no.such.message' });
    expect((await asyncApiProblems(broken)).length).toBeGreaterThan(0);

    expect(Object.values<Doc>(asyncapi.channels).map((c) => c.address)).toEqual([
      '/ws/{workflow_name}/{app_id}/{chat_id}/{user_id}',
      '/api/v1/mission-ally/ws',
      '/api/observability/ws',
      '/api/bridge/session/{sessionId}/ws',
    ]);
    expect(asyncapi.servers).toEqual({ gateway: { host: new URL(p.url).host, protocol: 'ws', description: 'the gateway' } });
    // A service's own documents are not reachable through the gateway, whatever the prefix.
    for (const path of ['/api/observability/asyncapi.json', '/api/observability/openapi.json', '/api/observability/AsyncAPI.json']) {
      const r = await call(p.url, 'GET', path, { token: p.token });
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
    }
  });

  it("the sockets' credentials are where the platform looks for a token (the kit's TOKEN_PLACES)", () => {
    const place = (ref: { $ref: string }) => {
      const s = asyncapi.components.securitySchemes[ref.$ref.split('/').pop() as string];
      return s.type === 'http' ? { source: 'header' } : { source: s.in, name: s.name };
    };
    expect(asyncapi.operations['runtimeChat.receive'].security.map(place)).toEqual(TOKEN_PLACES.ws);
    expect(asyncapi.operations['observabilityLive.receive'].security.map(place)).toEqual(TOKEN_PLACES.ws);
  });

  /** A socket URL built from the document alone: its server, the channel's address, a query credential. */
  function socketUrl(channel: string, params: Record<string, string>, query: Record<string, string>): string {
    const server = asyncapi.servers.gateway;
    const address = (asyncapi.channels[channel].address as string).replace(/\{([^}]+)\}/g, (_m, name: string) => encodeURIComponent(params[name]));
    return `${server.protocol}://${server.host}${server.pathname ?? ''}${address}?${new URLSearchParams(query)}`;
  }

  function messageCheck(channel: string) {
    const ajv = new Ajv({ strict: false, allErrors: true }); // draft-07: AsyncAPI 3.0's schema format
    addFormats(ajv);
    return (m: Doc) => {
      const spec = asyncapi.channels[channel].messages[m.type];
      if (!spec) return { type: m.type, valid: false, errors: 'not in the document' };
      const check = compile(ajv, asyncapi, spec.payload);
      return { type: m.type, valid: check(m), errors: check.errors ?? null };
    };
  }

  it('a client that opens the sockets as the document says gets messages its schemas accept', async () => {
    const sub = `docs-chat-${p.appId}`;
    const user = await p.sign({ sub, apps: [p.appId] });
    const started = await call(p.url, 'POST', `/api/chats/${p.appId}/greeter/start`, { token: user, body: { user_id: sub } });
    expect(started.status).toBeLessThan(300);

    const credential = (channel: string) => asyncapi.components.securitySchemes[asyncapi.operations[`${channel}.receive`].security[0].$ref.split('/').pop()].name;
    const chat = await TestSocket.connect(socketUrl('runtimeChat', { workflow_name: 'greeter', app_id: p.appId, chat_id: started.json.chat_id, user_id: sub }, { [credential('runtimeChat')]: user }));
    const live = await TestSocket.connect(socketUrl('observabilityLive', {}, { [credential('observabilityLive')]: p.token }));
    try {
      const runtimeCheck = messageCheck('runtimeChat');
      const meta = await chat.waitType('chat_meta');
      expect(runtimeCheck(meta)).toEqual({ type: 'chat_meta', valid: true, errors: null });
      chat.send({ type: 'client.resume', lastClientIndex: -1 });
      const boundary = await chat.waitType('chat.resume_boundary');
      expect(runtimeCheck(boundary)).toEqual({ type: 'chat.resume_boundary', valid: true, errors: null });
      chat.send({ type: 'no.such.message' });
      const refusal = await chat.waitType('chat.error');
      expect(runtimeCheck(refusal)).toEqual({ type: 'chat.error', valid: true, errors: null });

      const obsCheck = messageCheck('observabilityLive');
      expect(obsCheck(await live.waitType('init'))).toEqual({ type: 'init', valid: true, errors: null });
      live.send({ type: 'ping' });
      expect(obsCheck(await live.waitType('pong'))).toEqual({ type: 'pong', valid: true, errors: null });
    } finally {
      await Promise.all([chat.close(), live.close()]);
    }

    // The bridge: its session socket as bootstrap hands it out, with the credential the document names.
    const boot = await call(p.url, 'POST', '/api/bridge/session/bootstrap', { token: user, body: { scadaUrl: 'https://scada.example.com', accessToken: `scada-${p.appId}` } });
    expect(boot.status).toBe(200);
    expect(credential('bridgeSession')).toBe('sessionToken');
    const bridgeSocket = await TestSocket.connect(socketUrl('bridgeSession', { sessionId: boot.json.sessionId }, { sessionToken: boot.json.sessionToken }));
    try {
      const bridgeCheck = messageCheck('bridgeSession');
      expect(bridgeCheck(await bridgeSocket.waitType('session.snapshot'))).toEqual({ type: 'session.snapshot', valid: true, errors: null });
      bridgeSocket.send({ type: 'ping' });
      expect(bridgeCheck(await bridgeSocket.waitType('pong'))).toEqual({ type: 'pong', valid: true, errors: null });
    } finally {
      await bridgeSocket.close();
    }
    await call(p.url, 'DELETE', `/api/bridge/session/${boot.json.sessionId}`, { token: user });
  });

  it('a refusal is the close code the document gives', async () => {
    const sub = `docs-other-${p.appId}`;
    const stranger = await p.sign({ sub, apps: [p.appId] });
    const owner = `docs-owner-${p.appId}`;
    const started = await call(p.url, 'POST', `/api/chats/${p.appId}/greeter/start`, { token: await p.sign({ sub: owner, apps: [p.appId] }), body: { user_id: owner } });
    // Another user's chat (the stranger names the owner in the path, with its own token).
    const s = new TestSocket(socketUrl('runtimeChat', { workflow_name: 'greeter', app_id: p.appId, chat_id: started.json.chat_id, user_id: owner }, { access_token: stranger }));
    const code = await s.closed;
    expect(asyncapi.channels.runtimeChat['x-close-codes'][String(code)]).toMatch(/not your chat/);
    // The bridge: a session that is not there.
    const b = new TestSocket(socketUrl('bridgeSession', { sessionId: 'no-such-session' }, { access_token: stranger }));
    const bcode = await b.closed;
    expect(bcode).toBe(4404);
    expect(asyncapi.channels.bridgeSession['x-close-codes']['4404']).toMatch(/no such session/);
  });
});

describe('API documents behind a configured public URL', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off', OBSERVABILITY_URL: 'http://127.0.0.1:9', PUBLIC_URL: 'https://api.example.com/tessera' });
  });

  afterAll(async () => {
    await gw.stop();
  });

  it('names PUBLIC_URL as the server of both documents, and leaves out the sockets of services not deployed', async () => {
    const [o, a] = await Promise.all([call(gw.url, 'GET', '/openapi.json'), call(gw.url, 'GET', '/asyncapi.json', { headers: { host: 'evil.example' } })]);
    expect(o.json.servers).toEqual([{ url: 'https://api.example.com/tessera', description: 'the gateway' }]);
    expect(a.json.servers).toEqual({ gateway: { host: 'api.example.com', protocol: 'wss', pathname: '/tessera', description: 'the gateway' } });
    // Runtime and bridge are `off`; observability is deployed (even if it does not answer now).
    expect(Object.keys(a.json.channels)).toEqual(['observabilityLive']);
    expect(await asyncApiProblems(a.json)).toEqual([]);
  });

  it('without PUBLIC_URL, the host the request named, when it is a host', async () => {
    const plain = await startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off' });
    try {
      const named = await call(plain.url, 'GET', '/asyncapi.json', { headers: { host: 'tessera.local:8080' } });
      expect(named.json.servers).toEqual({ gateway: { host: 'tessera.local:8080', protocol: 'ws', description: 'the gateway' } });
      const odd = await call(plain.url, 'GET', '/asyncapi.json', { headers: { host: 'a b/<script>' } });
      expect(odd.status).toBe(200);
      expect(odd.json).not.toHaveProperty('servers');
      expect(Object.keys(odd.json.channels)).toEqual([]);
    } finally {
      await plain.stop();
    }
  });
});
