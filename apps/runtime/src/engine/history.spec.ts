import { boundHistory } from './history';
import type { ConversationMessage } from './types';

const user = (content: string): ConversationMessage => ({ role: 'user', content });
const assistant = (content: string, calls = false): ConversationMessage => ({
  role: 'assistant',
  agent: 'a',
  content,
  ...(calls ? { tool_calls: [{ id: `c-${content}`, name: 'lookup', args: {} }] } : {}),
});
const tool = (id: string): ConversationMessage => ({ role: 'tool', tool_call_id: id, tool_name: 'lookup', content: 'ok' });

describe('boundHistory', () => {
  it('keeps a conversation within the limits as it is', () => {
    const m = [user('hi'), assistant('hello')];
    expect(boundHistory(m, { maxMessages: 10, maxChars: 1000 })).toBe(m);
  });

  it('keeps the newest messages, starting at a user message', () => {
    const m = Array.from({ length: 50 }, (_, i) => [user(`u${i}`), assistant(`a${i}`)]).flat();
    const kept = boundHistory(m, { maxMessages: 5, maxChars: 1e6 });
    expect(kept.map((x) => x.content)).toEqual(['u48', 'a48', 'u49', 'a49']);
  });

  it('never keeps a tool result without the call that asked for it', () => {
    const m = [user('u0'), assistant('a0', true), tool('c-a0'), assistant('done0'), user('u1'), assistant('a1', true), tool('c-a1'), assistant('done1')];
    const kept = boundHistory(m, { maxMessages: 3, maxChars: 1e6 });
    // The last 3 would start at a tool result: the latest exchange is kept whole instead.
    expect(kept[0]).toEqual(user('u1'));
    expect(kept).toHaveLength(4);
  });

  it('bounds by characters too', () => {
    const long = 'x'.repeat(1000);
    const m = [user(long), assistant(long), user('short'), assistant('reply')];
    expect(boundHistory(m, { maxMessages: 100, maxChars: 500 }).map((x) => x.content)).toEqual(['short', 'reply']);
  });
});
