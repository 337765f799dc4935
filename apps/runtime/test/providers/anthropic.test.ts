import { createAnthropicProvider } from '../../src/providers/anthropic';
import { isAbortError } from '../../src/providers/errors';
import type { ModelChunk, ModelRequest } from '../../src/providers/types';
import { askedForName, pause, sendEvent, startSseServer, type SseServer } from './sse-server';

const KEY = 'sk-ant-test-0123456789';

const request: ModelRequest = {
  model: 'claude-test',
  system: 'You are terse.',
  messages: [
    { role: 'user', content: 'Ask me something.' },
    ...askedForName(''),
  ],
  tools: [{ name: 'ask_user', description: 'Ask the user', parameters: { type: 'object', properties: { question: { type: 'string' } } } }],
  maxTokens: 256,
};

const messageStart = {
  type: 'message_start',
  message: {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-test',
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 25, output_tokens: 1 },
  },
};

describe('anthropic provider against a local Messages API server', () => {
  let server: SseServer;
  afterEach(async () => server?.close());

  it('streams text and a tool_use block, with usage and stop reason', async () => {
    server = await startSseServer(async (_req, res) => {
      sendEvent(res, messageStart);
      sendEvent(res, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      for (const text of ['Hi ', 'Ada', '!']) {
        sendEvent(res, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });
        await pause(2);
      }
      sendEvent(res, { type: 'content_block_stop', index: 0 });
      sendEvent(res, { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'ask_user', input: {} } });
      for (const partial_json of ['{"quest', 'ion": "Colo', 'r?"}'])
        sendEvent(res, { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json } });
      sendEvent(res, { type: 'content_block_stop', index: 1 });
      sendEvent(res, { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 15 } });
      sendEvent(res, { type: 'message_stop' });
      res.end();
    });
    const provider = createAnthropicProvider({ apiKey: KEY, model: 'default', baseURL: `${server.url}/v1`, maxRetries: 0 });
    const chunks: ModelChunk[] = [];
    for await (const c of provider.stream(request, new AbortController().signal)) chunks.push(c);

    expect(chunks).toEqual([
      { type: 'text-delta', text: 'Hi ' },
      { type: 'text-delta', text: 'Ada' },
      { type: 'text-delta', text: '!' },
      { type: 'tool-call', id: 'toolu_1', name: 'ask_user', args: { question: 'Color?' } },
      { type: 'finish', reason: 'tool-calls', usage: { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } },
    ]);

    const [req] = server.requests;
    expect(req.url).toBe('/v1/messages');
    expect(req.headers['x-api-key']).toBe(KEY);
    expect(req.headers['anthropic-version']).toBeDefined();
    expect(req.body).toMatchObject({
      model: 'claude-test',
      max_tokens: 256,
      stream: true,
      system: [{ type: 'text', text: 'You are terse.' }],
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'Ask me something.' }] },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'call_prev', name: 'ask_user', input: { question: 'Name?' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_prev', content: '{"answer":"Ada"}' }] },
      ],
      tools: [{ name: 'ask_user', description: 'Ask the user', input_schema: { type: 'object', properties: { question: { type: 'string' } } } }],
    });
  });

  // Anthropic's input_tokens leave out what the prompt cache read and wrote: the prompt is all three.
  it('reports prompt-cache writes and reads as parts of the prompt', async () => {
    server = await startSseServer((_req, res) => {
      sendEvent(res, {
        ...messageStart,
        message: { ...messageStart.message, model: 'claude-sonnet-4-20250514', usage: { input_tokens: 21, cache_creation_input_tokens: 1880, cache_read_input_tokens: 3200, output_tokens: 1 } },
      });
      sendEvent(res, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      sendEvent(res, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Done.' } });
      sendEvent(res, { type: 'content_block_stop', index: 0 });
      sendEvent(res, { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 412 } });
      sendEvent(res, { type: 'message_stop' });
      res.end();
    });
    const provider = createAnthropicProvider({ apiKey: KEY, model: 'claude-sonnet-4-20250514', baseURL: server.url, maxRetries: 0 });
    const chunks: ModelChunk[] = [];
    for await (const c of provider.stream({ ...request, model: 'claude-sonnet-4-20250514', tools: [] }, new AbortController().signal)) chunks.push(c);
    expect(chunks.at(-1)).toEqual({
      type: 'finish',
      reason: 'stop',
      usage: { prompt_tokens: 21 + 1880 + 3200, completion_tokens: 412, total_tokens: 21 + 1880 + 3200 + 412, cache_read_tokens: 3200, cache_write_tokens: 1880 },
    });
  });

  it('stops promptly when aborted mid-stream', async () => {
    server = await startSseServer(async (_req, res) => {
      sendEvent(res, messageStart);
      sendEvent(res, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        sendEvent(res, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `w${i} ` } });
        await pause(100);
      }
      res.end();
    });
    const provider = createAnthropicProvider({ apiKey: KEY, model: 'claude-test', baseURL: server.url, maxRetries: 0 });
    const ac = new AbortController();
    let abortedAt = 0;
    let deltas = 0;
    const err = await (async () => {
      for await (const c of provider.stream(request, ac.signal)) {
        if (c.type === 'text-delta' && ++deltas === 1) {
          abortedAt = Date.now();
          ac.abort();
        }
      }
    })().catch((e) => e);
    expect(isAbortError(err)).toBe(true);
    expect(deltas).toBe(1);
    expect(Date.now() - abortedAt).toBeLessThan(250);
    await server.clientClosed;
  });
});
