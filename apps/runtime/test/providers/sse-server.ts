/**
 * A local HTTP server on port 0 that records each request and lets the test answer it with a
 * server-sent-event stream, the wire format of OpenAI's and Anthropic's streaming APIs.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ModelRequest } from '../../src/providers/types';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: any;
}

export interface SseServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: RecordedRequest[];
  /** Resolves when the client closed a response before the server ended it. Handlers answer through `sendData` / `sendEvent` (which open the event stream) or write a plain response. */
  clientClosed: Promise<void>;
  close(): Promise<void>;
}

export type SseHandler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export async function startSseServer(handler: SseHandler): Promise<SseServer> {
  const requests: RecordedRequest[] = [];
  let onClientClosed!: () => void;
  const clientClosed = new Promise<void>((r) => (onClientClosed = r));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      requests.push(recorded);
      res.on('close', () => {
        if (!res.writableEnded) onClientClosed();
      });
      void handler(recorded, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    clientClosed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function beginStream(res: ServerResponse): void {
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

/** One OpenAI-style event: `data: <json>`. */
export function sendData(res: ServerResponse, data: unknown): void {
  beginStream(res);
  res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

/** One Anthropic-style event: `event: <type>` then `data: <json>`. */
export function sendEvent(res: ServerResponse, data: { type: string } & Record<string, unknown>): void {
  beginStream(res);
  res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** One chunk of an OpenAI chat-completion stream, as `sendData` sends it. */
export const openAiChunk = (delta: Record<string, unknown>, finish_reason: string | null = null, model = 'test-model') => ({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1_700_000_000,
  model,
  choices: [{ index: 0, delta, finish_reason }],
});

/** The two messages of an earlier ask_user round trip (the model asked a name, the user answered Ada): how each provider writes a tool call and its result. */
export const askedForName = (assistantText: string): ModelRequest['messages'] => [
  { role: 'assistant', content: assistantText, tool_calls: [{ id: 'call_prev', name: 'ask_user', args: { question: 'Name?' } }] },
  { role: 'tool', tool_call_id: 'call_prev', tool_name: 'ask_user', content: '{"answer":"Ada"}' },
];

export const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
