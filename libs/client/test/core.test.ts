/** Pieces of the core that need no runtime: backoff, tenant-safe keys, storage that went bad, renderers. */
import { backoffDelay, ChatConnection, PendingQueue, storageKey, UiToolRegistry, type ToolCall } from '../src';
import { memoryStorage } from './helpers';

test('backoff grows exponentially up to its cap, with jitter inside [cap/2, cap]', () => {
  const b = { initialMs: 100, maxMs: 5000 };
  expect([0, 1, 2, 3].map((a) => backoffDelay(a, b, () => 1))).toEqual([100, 200, 400, 800]);
  expect([0, 1, 2, 3].map((a) => backoffDelay(a, b, () => 0))).toEqual([50, 100, 200, 400]);
  expect(backoffDelay(50, b, () => 1)).toBe(5000);
  const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, b)));
  expect(spread.size).toBeGreaterThan(40); // two clients dropped together do not retry together
});

test('state is keyed by app + user + chat: another user or app over the same storage sees none of it', () => {
  const storage = memoryStorage();
  const ids = { appId: 'app1', userId: 'u1', chatId: 'c1', workflowName: 'assistant' };
  const host = { storage, getAccessToken: () => 't', httpBaseUrl: 'http://x', wsBaseUrl: 'ws://x', WebSocket: undefined };
  const conn = new ChatConnection(host, ids);
  conn.setOnline(false); // nothing to connect to: it only queues
  conn.send('hello');
  expect(new ChatConnection(host, ids).pendingActions).toHaveLength(1);
  expect(new ChatConnection(host, { ...ids, userId: 'u2' }).pendingActions).toHaveLength(0);
  expect(new ChatConnection(host, { ...ids, appId: 'app2' }).pendingActions).toHaveLength(0);
  expect(storageKey('a:b', 'c')).not.toBe(storageKey('a', 'b:c')); // ids with separators cannot collide
});

test('corrupt stored state is dropped, not thrown', () => {
  const storage = memoryStorage();
  const ids = { appId: 'app1', userId: 'u1', chatId: 'c1' };
  storage.setItem(storageKey('app1', 'u1', 'c1', 'pending'), '{not json');
  storage.setItem(storageKey('app1', 'u1', 'c1', 'last_index'), '"seven"');
  expect(new PendingQueue(storage, ids).list()).toEqual([]);
  const conn = new ChatConnection({ storage, getAccessToken: () => null, httpBaseUrl: '', wsBaseUrl: '' }, { ...ids, workflowName: 'w' });
  expect(conn.lastAppliedIndex).toBe(-1);
});

test('an unknown component or a renderer that throws gets the fallback', () => {
  const call: ToolCall = {
    event_id: 'e1', tool_call_id: 't1', tool_name: 'x', component: 'Mystery', agent: 'a',
    payload: {}, awaiting_response: false, interaction_type: 'display', display: 'inline',
  };
  const reg = new UiToolRegistry<string>((c) => `fallback ${c.component}`).register('Broken', () => {
    throw new Error('renderer bug');
  });
  const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  expect(reg.render(call, () => undefined)).toBe('fallback Mystery');
  expect(reg.render({ ...call, component: 'Broken' }, () => undefined)).toBe('fallback Broken');
  expect(spy).toHaveBeenCalledTimes(1);
  spy.mockRestore();
  expect(UiToolRegistry.routesComposer(call)).toBe(false);
});
