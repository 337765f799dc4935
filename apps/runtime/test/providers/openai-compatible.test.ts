import type { ServerResponse } from 'node:http';
import { isAbortError, ModelProviderError } from '../../src/providers/errors';
import { createOpenAICompatibleProvider } from '../../src/providers/openai-compatible';
import type { ModelChunk, ModelRequest } from '../../src/providers/types';
import { askedForName, openAiChunk as chunk, pause, sendData, startSseServer, type SseServer } from './sse-server';

const KEY = 'sk-test-0123456789abcdef';

const request: ModelRequest = {
  model: 'test-model',
  system: 'You are terse.',
  messages: [
    { role: 'user', content: 'What is my name?' },
    ...askedForName('Let me ask.'),
    { role: 'user', content: 'Greet me, then ask something.' },
  ],
  tools: [
    {
      name: 'ask_user',
      description: 'Ask the user',
      parameters: { type: 'object', properties: { question: { type: 'string' } }, required: ['question'] },
    },
  ],
  temperature: 0.2,
};

async function collect(it: AsyncIterable<ModelChunk>): Promise<ModelChunk[]> {
  const out: ModelChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

describe('openai-compatible provider against a local chat-completions server', () => {
  let server: SseServer;
  afterEach(async () => server?.close());

  it('streams text in order, assembles the tool call, reports usage and finish reason', async () => {
    server = await startSseServer(async (_req, res: ServerResponse) => {
      sendData(res, chunk({ role: 'assistant', content: '' }));
      for (const piece of ['Hel', 'lo, ', 'Ada', '.']) {
        sendData(res, chunk({ content: piece }));
        await pause(2);
      }
      sendData(res, chunk({ tool_calls: [{ index: 0, id: 'call_abc', type: 'function', function: { name: 'ask_user', arguments: '' } }] }));
      sendData(res, chunk({ tool_calls: [{ index: 0, function: { arguments: '{"quest' } }] }));
      sendData(res, chunk({ tool_calls: [{ index: 0, function: { arguments: 'ion": "Favourite ' } }] }));
      sendData(res, chunk({ tool_calls: [{ index: 0, function: { arguments: 'color?"}' } }] }));
      sendData(res, chunk({}, 'tool_calls'));
      sendData(res, { ...chunk({}), choices: [], usage: { prompt_tokens: 42, completion_tokens: 9, total_tokens: 51 } });
      sendData(res, '[DONE]');
      res.end();
    });
    const provider = createOpenAICompatibleProvider({ baseURL: `${server.url}/v1`, apiKey: KEY, model: 'default-model', maxRetries: 0 });
    expect(provider.deterministic).toBe(false);

    const chunks = await collect(provider.stream(request, new AbortController().signal));

    expect(chunks.filter((c) => c.type === 'text-delta').map((c) => (c as { text: string }).text)).toEqual(['Hel', 'lo, ', 'Ada', '.']);
    expect(chunks.filter((c) => c.type !== 'text-delta')).toEqual([
      { type: 'tool-call', id: 'call_abc', name: 'ask_user', args: { question: 'Favourite color?' } },
      { type: 'finish', reason: 'tool-calls', usage: { prompt_tokens: 42, completion_tokens: 9, total_tokens: 51 } },
    ]);

    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEY}`);
    const body = req.body;
    expect(body.model).toBe('test-model');
    expect(body.stream).toBe(true);
    expect(body.stream_options).toEqual({ include_usage: true });
    expect(body.temperature).toBe(0.2);
    expect(body.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What is my name?' },
      {
        role: 'assistant',
        content: 'Let me ask.',
        tool_calls: [{ id: 'call_prev', type: 'function', function: { name: 'ask_user', arguments: '{"question":"Name?"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_prev', content: '{"answer":"Ada"}' },
      { role: 'user', content: 'Greet me, then ask something.' },
    ]);
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'ask_user',
          description: 'Ask the user',
          parameters: { type: 'object', properties: { question: { type: 'string' } }, required: ['question'] },
        },
      },
    ]);
  });

  it('reports a plain stop with its usage', async () => {
    server = await startSseServer((_req, res) => {
      sendData(res, chunk({ role: 'assistant', content: 'Done' }));
      sendData(res, chunk({}, 'stop'));
      sendData(res, { ...chunk({}), choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } });
      sendData(res, '[DONE]');
      res.end();
    });
    const provider = createOpenAICompatibleProvider({ baseURL: server.url, model: 'm', maxRetries: 0 });
    const chunks = await collect(provider.stream({ ...request, tools: [] }, new AbortController().signal));
    expect(chunks).toEqual([
      { type: 'text-delta', text: 'Done' },
      { type: 'finish', reason: 'stop', usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } },
    ]);
    expect(server.requests[0].headers.authorization).toBeUndefined();
    expect(server.requests[0].body.tools).toBeUndefined();
  });

  // OpenAI's usage chunk as it reports a cache hit and a reasoning model's thinking: the cached
  // and reasoning tokens are parts of prompt_tokens and completion_tokens.
  it.each([
    {
      what: 'cached prompt tokens',
      model: 'gpt-4o',
      usage: { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
      want: { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, cache_read_tokens: 1920, reasoning_tokens: 0 },
    },
    {
      what: 'reasoning tokens of a reasoning model',
      model: 'o3-mini',
      usage: { prompt_tokens: 75, completion_tokens: 1186, total_tokens: 1261, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 1024 } },
      want: { prompt_tokens: 75, completion_tokens: 1186, total_tokens: 1261, cache_read_tokens: 0, reasoning_tokens: 1024 },
    },
    {
      what: 'no details (a server that reports only the totals)',
      model: 'llama3.2',
      usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
      want: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 },
    },
  ])('reports $what as the server sent them', async ({ model, usage, want }) => {
    server = await startSseServer((_req, res) => {
      sendData(res, chunk({ role: 'assistant', content: 'Done' }, null, model));
      sendData(res, chunk({}, 'stop', model));
      sendData(res, { ...chunk({}, null, model), choices: [], usage });
      sendData(res, '[DONE]');
      res.end();
    });
    const provider = createOpenAICompatibleProvider({ baseURL: server.url, model, maxRetries: 0 });
    const chunks = await collect(provider.stream({ ...request, model, tools: [] }, new AbortController().signal));
    expect(chunks.at(-1)).toEqual({ type: 'finish', reason: 'stop', usage: want });
  });

  it('stops promptly when aborted mid-stream and throws an AbortError', async () => {
    server = await startSseServer(async (_req, res) => {
      // A slow model: one word every 100 ms, for a long time.
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        sendData(res, chunk({ content: `w${i} ` }));
        await pause(100);
      }
      res.end();
    });
    const provider = createOpenAICompatibleProvider({ baseURL: server.url, apiKey: KEY, model: 'm', maxRetries: 0 });
    const ac = new AbortController();
    const seen: string[] = [];
    let abortedAt = 0;
    const err = await (async () => {
      try {
        for await (const c of provider.stream(request, ac.signal)) {
          if (c.type === 'text-delta') seen.push(c.text);
          if (seen.length === 2) {
            abortedAt = Date.now();
            ac.abort();
          }
        }
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    const took = Date.now() - abortedAt;
    expect(isAbortError(err)).toBe(true);
    expect(seen).toEqual(['w0 ', 'w1 ']);
    expect(took).toBeLessThan(250);
    await server.clientClosed; // the HTTP request was really cancelled
  });

  it('fails with a safe message when the server rejects the key', async () => {
    server = await startSseServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${KEY}`, type: 'invalid_request_error' } }));
    });
    const provider = createOpenAICompatibleProvider({ baseURL: server.url, apiKey: KEY, model: 'm', maxRetries: 0 });
    const err = await collect(provider.stream(request, new AbortController().signal)).catch((e) => e);
    expect(err).toBeInstanceOf(ModelProviderError);
    expect(err.status).toBe(401);
    expect(err.message).toContain('Incorrect API key');
    expect(err.message).not.toContain(KEY);
  });
});
