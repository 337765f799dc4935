import { Parser } from '@asyncapi/parser';
import Ajv from 'ajv';
import { z } from 'zod';
import { buildAsyncApi, type SocketSpec } from './asyncapi';
import * as bridge from './bridge';
import * as mission from './mission';
import * as observability from './observability';
import { CLIENT_MESSAGE_TYPES, ControlData, TimelineData } from './runtime/ws';
import { SOCKETS } from './sockets';

const doc = buildAsyncApi({ title: 'Tessera sockets', version: '0.1.0', server: { host: 'api.example.com', protocol: 'wss', pathname: '/' }, sockets: SOCKETS }) as any;

/** Diagnostics at error (0) or warning (1) severity; the parser's "not the latest version" note (info) is not one. */
async function problems(document: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  return diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`);
}

/** A message payload's schema with the document's named schemas, for ajv (draft-07, AsyncAPI 3.0's default). */
function validator(channel: string, message: string) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ components: doc.components }, 'doc');
  const payload = JSON.parse(JSON.stringify(doc.channels[channel].messages[message].payload).replaceAll('"#/components/', '"doc#/components/'));
  return ajv.compile(payload);
}

const names = (channel: string, op: 'send' | 'receive') => doc.operations[`${channel}.${op}`].messages.map((m: { $ref: string }) => m.$ref.split('/').pop());

describe('buildAsyncApi over the four socket protocols', () => {
  it('is a valid AsyncAPI 3.0 document (@asyncapi/parser), and the parser does reject a broken one', async () => {
    expect(doc.asyncapi).toBe('3.0.0');
    expect(await problems(doc)).toEqual([]);
    const broken = structuredClone(doc);
    broken.operations['missionAlly.receive'].messages.push({ $ref: '#/channels/missionAlly/messages/nothing' });
    delete broken.channels.runtimeChat.address;
    broken.channels.runtimeChat.address = 42;
    expect((await problems(broken)).length).toBeGreaterThan(0);
  });

  it('has one channel per socket, at the address a client opens through the gateway, with its parameters', () => {
    expect(Object.fromEntries(Object.entries(doc.channels).map(([id, c]: [string, any]) => [id, c.address]))).toEqual({
      runtimeChat: '/ws/{workflow_name}/{app_id}/{chat_id}/{user_id}',
      missionAlly: '/api/v1/mission-ally/ws',
      observabilityLive: '/api/observability/ws',
      bridgeSession: '/api/bridge/session/{sessionId}/ws',
    });
    for (const c of Object.values<any>(doc.channels)) {
      const inAddress = [...c.address.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(Object.keys(c.parameters ?? {})).toEqual(inAddress);
    }
    expect(doc.channels.runtimeChat.parameters.app_id.description).toBe('Tenant / application boundary');
    expect(doc.channels.missionAlly.bindings.ws.query).toMatchObject({ type: 'object', required: ['mission_id'] });
  });

  it('lists every message of each protocol, each way', () => {
    expect(names('runtimeChat', 'receive')).toEqual([...CLIENT_MESSAGE_TYPES]);
    expect(names('runtimeChat', 'send').sort()).toEqual([...new Set([...Object.keys(TimelineData), ...Object.keys(ControlData)])].sort());
    expect(names('missionAlly', 'receive')).toEqual([...mission.CLIENT_MESSAGE_TYPES]);
    expect(names('missionAlly', 'send')).toEqual(mission.ServerMessage.options.map((o) => o.shape.type.value));
    expect(names('observabilityLive', 'receive')).toEqual(['subscribe', 'unsubscribe', 'ping']);
    expect(names('observabilityLive', 'send')).toEqual(observability.ObsServerMessage.options.map((o) => o.shape.type.value));
    expect(names('bridgeSession', 'receive')).toEqual(['ping', 'hub.response']);
    expect(names('bridgeSession', 'send')).toEqual([...bridge.SessionEnvelopeType.options]);
    // Tessera receives what clients send and sends what they read.
    expect(doc.operations['runtimeChat.receive'].action).toBe('receive');
    expect(doc.operations['runtimeChat.send'].action).toBe('send');
  });

  it('payload schemas accept what the services send and refuse what they do not', () => {
    const text = validator('runtimeChat', 'chat.text');
    const event = { type: 'chat.text', data: { message_id: 'm1', agent: 'planner', role: 'assistant', delta: 'Hi', done: false }, timestamp: '2026-01-01T00:00:00.000Z', index: 3 };
    expect(text(event)).toBe(true);
    expect(text({ ...event, index: undefined })).toBe(false); // a timeline event always has its index
    expect(text({ ...event, type: 'chat.print' })).toBe(false);
    const meta = validator('runtimeChat', 'chat_meta');
    expect(meta({ type: 'chat_meta', data: {}, timestamp: 'x', index: 1 })).toBe(false);
    const init = validator('observabilityLive', 'init');
    expect(init({ type: 'init', sessions: [], next_cursor: null })).toBe(true);
    const snapshot = validator('bridgeSession', 'session.snapshot');
    const payload = { sessionInfo: { updatedAt: '2026-01-01T00:00:00.000Z' }, opencodeUrl: 'http://127.0.0.1:30001', opencodeSessionId: null, model: null, scadaUrl: 'https://scada.example.com' };
    expect(snapshot({ type: 'session.snapshot', sessionId: 's1', timestamp: 't', payload })).toBe(true);
    const checkpoint = validator('missionAlly', 'checkpoint_update');
    expect(checkpoint({ type: 'checkpoint_update', completed_checkpoints: ['a'], progress: 101 })).toBe(false);
  });

  it('every example validates against its own payload schema', () => {
    let count = 0;
    for (const [channel, c] of Object.entries<any>(doc.channels)) {
      for (const [name, m] of Object.entries<any>(c.messages)) {
        for (const ex of m.examples ?? []) {
          const validate = validator(channel, name);
          expect({ channel, name, valid: validate(ex.payload), errors: validate.errors }).toEqual({ channel, name, valid: true, errors: null });
          count++;
        }
      }
    }
    expect(count).toBeGreaterThanOrEqual(6);
  });

  it('says where each socket takes its credential', () => {
    const schemeOf = (ref: { $ref: string }) => doc.components.securitySchemes[ref.$ref.split('/').pop() as string];
    const places = (channel: string) => doc.operations[`${channel}.receive`].security.map(schemeOf).map((s: any) => (s.type === 'http' ? 'header:authorization' : `${s.in}:${s.name}`));
    expect(places('runtimeChat')).toEqual(['query:access_token', 'query:token', 'header:authorization', 'cookie:access_token', 'cookie:token', 'cookie:session']);
    expect(places('missionAlly')).toEqual(['query:token', 'cookie:token', 'cookie:session', 'header:authorization']);
    expect(places('bridgeSession').slice(0, 2)).toEqual(['query:sessionToken', 'header:x-session-token']);
    expect(doc.components.securitySchemes.bearerHeader).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('gives each socket its close codes, in the description and as x-close-codes', () => {
    expect(Object.keys(doc.channels.missionAlly['x-close-codes'])).toEqual(expect.arrayContaining(['1000', '1008', '1011']));
    expect(Object.keys(doc.channels.bridgeSession['x-close-codes'])).toEqual(expect.arrayContaining(['4000', '4401', '4404']));
    expect(doc.channels.bridgeSession.description).toContain('| 4404 |');
    expect(doc.channels.runtimeChat['x-close-codes']['1008']).toMatch(/not your chat/);
  });

  it('names the server it describes', () => {
    expect(doc.servers).toEqual({ gateway: { host: 'api.example.com', protocol: 'wss' } });
    const prefixed = buildAsyncApi({ title: 't', version: '1', server: { host: 'h:1', protocol: 'ws', pathname: '/tessera/' }, sockets: [] }) as any;
    expect(prefixed.servers.gateway).toEqual({ host: 'h:1', protocol: 'ws', pathname: '/tessera' });
    expect(buildAsyncApi({ title: 't', version: '1', sockets: [] })).not.toHaveProperty('servers');
  });

  it('refuses an example that does not parse with its message schema', () => {
    const spec: SocketSpec = {
      id: 'x',
      address: '/x',
      title: 'x',
      summary: 'x',
      description: 'x',
      credentials: [],
      closeCodes: {},
      receives: [{ name: 'hello', summary: 'x', schema: z.object({ type: z.literal('hello'), n: z.number() }), examples: [{ type: 'hello', n: 'one' }] }],
      sends: [],
    };
    expect(() => buildAsyncApi({ title: 't', version: '1', sockets: [spec] })).toThrow(/socket x, message hello: example 0 does not match its schema: n:/);
  });
});
