/**
 * `npm run chat -- <workflow>`: a chat with a workflow's agents from the terminal, through the
 * gateway, as a client written from document 003 would hold it (libs/client). See options.ts for
 * the command line, terminal.ts for what it shows.
 */
import WebSocket from 'ws';
import { ChatConnection, storageKey, TesseraApi, type Host, type HostStorage, type SocketFactory } from '@tessera/client';
import { ChatStartError, joinChat } from './begin';
import { DEFAULT_APP, parseOptions, USAGE, UsageError } from './options';
import { TerminalChat, type RefusalReports } from './terminal';

function memoryStorage(): HostStorage {
  const map = new Map<string, string>();
  return { getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

/** `ws` sockets that also report an upgrade the gateway answered with an HTTP status (401, 403, ...). */
function reportingSockets(reports: RefusalReports): SocketFactory {
  return class extends WebSocket {
    constructor(url: string) {
      super(url);
      this.on('error', (err) => {
        const m = /Unexpected server response: (\d+)/.exec(err.message);
        if (m) reports.onRefused?.(Number(m[1]));
      });
    }
  } as unknown as SocketFactory;
}

function exit(code: number): void {
  // Exit once what is written has reached the pipe or terminal.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = await parseOptions(process.argv.slice(2), process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`[chat] ${e.message}\n${e.usage ? `\n${USAGE}\n` : ''}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const reports: RefusalReports = { onRefused: null };
  const host: Host = {
    storage: memoryStorage(),
    getAccessToken: () => opts.token,
    httpBaseUrl: opts.url,
    wsBaseUrl: opts.url.replace(/^http/, 'ws'),
    WebSocket: reportingSockets(reports),
  };
  if (opts.tokenSource === 'development') process.stderr.write(`[chat] no TOKEN set: using npm start's development token (user ${opts.userId}, app ${opts.appId})\n`);
  let joined;
  try {
    joined = await joinChat(opts, host);
  } catch (e) {
    if (!(e instanceof ChatStartError)) throw e;
    process.stderr.write(`[chat] ${e.message}\n`);
    return 1;
  }
  const { ids } = joined;
  process.stderr.write(`[chat] ${joined.how}: chat ${ids.chatId} (workflow ${ids.workflowName}, app ${ids.appId}, user ${ids.userId}) at ${opts.url}\n`);
  // "Nothing applied yet" as 0 rather than the client's -1 (the runtime reads both alike): with -1,
  // the client core answers a new chat's boundary (last_message_index 0) with another resume, over
  // and over until the first event, and the runtime rate-limits the socket (libs/client, being fixed).
  host.storage.setItem(storageKey(ids.appId, ids.userId, ids.chatId, 'last_index'), '0');
  const conn = new ChatConnection(host, ids, { backoff: { initialMs: 250, maxMs: 5_000 } });
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const terminal = new TerminalChat(
    conn,
    new TesseraApi(host),
    { input: process.stdin, output: process.stdout, errors: process.stderr, interactive, color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR },
    reports,
    `chat ${ids.chatId}: rejoin with npm run chat -- ${ids.workflowName} --chat ${ids.chatId}${ids.appId === DEFAULT_APP ? '' : ` --app ${ids.appId}`}`,
  );
  return terminal.run();
}

main().then(exit, (e) => {
  process.stderr.write(`[chat] failed: ${e instanceof Error ? e.message : String(e)}\n`);
  exit(1);
});
