import { z } from 'zod';
import { BackendStartBody, InputBody, StartChatBody, ToolRespondBody, UploadFields } from '../runtime/http';
import { ClientMessage } from '../runtime/ws';
import { CreateSessionBody } from '../broker/http';
import { JSON_LIMITS, jsonProblems, SafeJsonRecord, SafeText, toStorableText, unstorableText } from './safe';
import { UserId } from './ids';

const nested = (levels: number): Record<string, unknown> => {
  const root: Record<string, unknown> = {};
  let cur = root;
  for (let i = 1; i < levels; i++) cur = (cur.a = {}) as Record<string, unknown>;
  return root;
};
const paths = (r: z.ZodSafeParseResult<unknown>) => (r.success ? [] : r.error.issues.map((i) => i.path.join('.')));

describe('SafeText', () => {
  it.each([
    ['a\u0000b', 'NUL'],
    ['\ud800', 'lone surrogate (U+D800)'],
    ['x\udc00', 'lone surrogate (U+DC00)'],
    ['\udc00\ud800', 'lone surrogate'],
  ])('refuses %j (%s)', (s, why) => {
    const r = SafeText.safeParse(s);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].message).toContain(why);
  });

  it.each(['plain', 'émoji 😀 and 漢字', '', '\u2028'])('accepts %j, pairs of surrogates included', (s) => {
    expect(SafeText.safeParse(s).success).toBe(true);
    expect(unstorableText(s)).toBeNull();
  });

  it('toStorableText replaces NUL and lone surrogates, and keeps pairs', () => {
    expect(toStorableText('a\u0000b\ud800c\udc00😀')).toBe('a\ufffdb\ufffdc\ufffd😀');
    expect(unstorableText(toStorableText('\udc00\ud800\u0000'))).toBeNull();
  });

  it('keeps its length checks when chained', () => {
    expect(SafeText.min(1).max(3).safeParse('abcd').success).toBe(false);
    expect(SafeText.min(1).max(3).safeParse('a\u0000').success).toBe(false);
  });
});

describe('SafeJsonRecord', () => {
  it('names the path of a NUL or lone surrogate in a nested string', () => {
    expect(paths(SafeJsonRecord.safeParse({ a: { b: ['ok', 'x\u0000'] } }))).toEqual(['a.b.1']);
    expect(paths(SafeJsonRecord.safeParse({ a: '\ud800' }))).toEqual(['a']);
  });

  it('refuses a key with NUL, naming its parent and the key escaped', () => {
    const r = SafeJsonRecord.safeParse({ a: { 'k\u0000': 1 } });
    expect(paths(r)).toEqual(['a']);
    expect(r.error!.issues[0].message).toContain('"k\\u0000"');
  });

  it(`allows ${JSON_LIMITS.depth} levels and refuses one more, 10,000 and 200,000 without overflowing`, () => {
    expect(SafeJsonRecord.safeParse(nested(JSON_LIMITS.depth)).success).toBe(true);
    for (const levels of [JSON_LIMITS.depth + 1, 500, 10_000, 200_000]) {
      const r = SafeJsonRecord.safeParse(nested(levels));
      expect(r.error!.issues).toEqual([expect.objectContaining({ message: `nests deeper than ${JSON_LIMITS.depth} levels` })]);
    }
    const arrays = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    expect(jsonProblems(arrays, JSON_LIMITS)).toHaveLength(1);
  });

  it(`refuses more than ${JSON_LIMITS.values} values`, () => {
    expect(SafeJsonRecord.safeParse({ list: Array.from({ length: JSON_LIMITS.values + 1 }, (_, i) => i) }).success).toBe(false);
    expect(SafeJsonRecord.safeParse({ list: Array.from({ length: 1_000 }, (_, i) => i) }).success).toBe(true);
  });

  it('reports a bounded number of issues however many strings are bad', () => {
    const r = SafeJsonRecord.safeParse(Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, '\u0000'])));
    expect(r.error!.issues.length).toBeLessThanOrEqual(5);
  });
});

describe('every schema that takes client text or JSON refuses what PostgreSQL cannot store', () => {
  const base = { StartChatBody: { user_id: 'u' }, BackendStartBody: { app_id: 'a', user_id: 'u', workflow_name: 'w' } };
  it.each<[string, z.ZodType, Record<string, unknown>, string]>([
    ['StartChatBody.context', StartChatBody, { ...base.StartChatBody, context: { a: 'a\u0000b' } }, 'context.a'],
    ['StartChatBody.client_request_id', StartChatBody, { ...base.StartChatBody, client_request_id: '\ud800' }, 'client_request_id'],
    ['BackendStartBody.initial_context', BackendStartBody, { ...base.BackendStartBody, initial_context: nested(500) }, 'initial_context'],
    ['BackendStartBody.ui_context', BackendStartBody, { ...base.BackendStartBody, ui_context: { x: ['\udfff'] } }, 'ui_context.x.0'],
    ['InputBody.message', InputBody, { message: 'a\u0000b', workflow_name: 'w' }, 'message'],
    ['InputBody.client_message_id', InputBody, { message: 'hi', workflow_name: 'w', client_message_id: '\u0000' }, 'client_message_id'],
    ['ToolRespondBody.event_id', ToolRespondBody, { event_id: 'e\u0000', response_data: {} }, 'event_id'],
    ['ToolRespondBody.response_data', ToolRespondBody, { event_id: 'e', response_data: { ok: '\ud800' } }, 'response_data.ok'],
    ['UploadFields.intent', UploadFields, { appId: 'a', userId: 'u', chatId: 'c', intent: 'x\u0000' }, 'intent'],
    ['CreateSessionBody.context', CreateSessionBody, { workflow_name: 'w', context: { deep: nested(40) } }, 'context.deep'],
    ['CreateSessionBody.client_request_id', CreateSessionBody, { workflow_name: 'w', client_request_id: 'r\u0000' }, 'client_request_id'],
    ['user.input.submit text', ClientMessage, { type: 'user.input.submit', text: '\ud800' }, 'text'],
    ['user.input.submit context', ClientMessage, { type: 'user.input.submit', text: 'hi', context: { k: 'a\u0000' } }, 'context.k'],
    ['user.input.submit client_message_id', ClientMessage, { type: 'user.input.submit', text: 'hi', client_message_id: '\u0000' }, 'client_message_id'],
    ['tool_call_response response', ClientMessage, { type: 'tool_call_response', tool_call_id: 't', response: { a: { b: '\udc00' } } }, 'response.a.b'],
    ['tool_call_response tool_call_id', ClientMessage, { type: 'tool_call_response', tool_call_id: '\u0000', response: {} }, 'tool_call_id'],
  ])('%s', (_name, schema, value, path) => {
    const r = schema.safeParse(value);
    expect(r.success).toBe(false);
    expect(paths(r)[0].startsWith(path)).toBe(true);
  });
});

describe('client.resume', () => {
  it('takes -1 as "nothing applied", the same as 0, and still refuses -2', () => {
    expect(ClientMessage.parse({ type: 'client.resume', lastClientIndex: -1 })).toEqual({ type: 'client.resume', lastClientIndex: 0 });
    expect(ClientMessage.parse({ type: 'client.resume', lastClientIndex: 7 })).toEqual({ type: 'client.resume', lastClientIndex: 7 });
    expect(ClientMessage.safeParse({ type: 'client.resume', lastClientIndex: -2 }).success).toBe(false);
  });
});

describe('UserId', () => {
  it.each(['auth0|abc', 'google-oauth2|1234', 'samlp|corp|j.doe@example.com', 'user-1', 'Zm9v+YmFy='])('accepts the identity provider subject %j', (id) => {
    expect(UserId.safeParse(id).success).toBe(true);
  });

  it.each(['a/b', 'a b', 'a%2Fb', 'a?b', 'a#b', 'tab\there', 'nul\u0000', '', 'x'.repeat(129)])('refuses %j', (id) => {
    expect(UserId.safeParse(id).success).toBe(false);
  });
});
