/**
 * An AG-UI client for the benchmarks: what `@ag-ui/client`'s HttpAgent does on the wire (POST a
 * RunAgentInput with the conversation so far, read the SSE response, parse each event's JSON),
 * without its RxJS pipeline, event verification and message assembly. Those run in a frontend,
 * not in the server the benchmark measures, and the 003 socket run beside it uses a bare ws
 * client with JSON.parse too. Each thread has one keep-alive connection of its own (an
 * `http.Agent` of one socket), as a browser tab has; node:http rather than fetch, whose undici
 * costs the benchmark process several times the ws client's CPU on a machine it shares with the
 * servers it measures.
 */
import http from 'node:http';
import { createParser } from 'eventsource-parser';

/** The AG-UI messages a frontend sends back each run (text only here). */
export interface AguiMessage {
  id: string;
  role: 'user' | 'assistant';
  content: string;
}

export interface AguiEvent {
  type: string;
  messageId?: string;
  delta?: string;
  message?: string;
}

/** A thread's connection: one keep-alive socket, opened by its first run (destroy it when done). */
export function aguiConnection(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 1 });
}

/**
 * One run: POST `body` to `url` over `agent`, call `onEvent` for each SSE event as it arrives,
 * resolve when the server ends the stream. A status other than 200 resolves with the reply's text.
 */
export function aguiRun(
  url: string,
  token: string,
  body: { threadId: string; runId: string; messages: AguiMessage[] },
  onEvent: (e: AguiEvent, id: string | undefined) => void,
  opts: { agent: http.Agent; signal?: AbortSignal },
): Promise<{ status: number; error?: string }> {
  const u = new URL(url);
  const payload = Buffer.from(JSON.stringify({ state: {}, tools: [], context: [], forwardedProps: {}, ...body }));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        hostname: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        agent: opts.agent,
        signal: opts.signal,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(payload.length), accept: 'text/event-stream' },
      },
      (res) => {
        res.setEncoding('utf8');
        res.on('error', reject);
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, error: text.slice(0, 300) }));
          return;
        }
        const parser = createParser({ onEvent: (m) => onEvent(JSON.parse(m.data) as AguiEvent, m.id) });
        res.on('data', (c: string) => parser.feed(c));
        res.on('end', () => resolve({ status: 200 }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
