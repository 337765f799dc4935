/**
 * `npm run chat` command line: which chat, where, and as whom. The token comes from --token, then
 * TOKEN (what `npm start` prints), then, against a gateway on this machine, the same development
 * token `npm start` signs (JWT_SECRET or the development secret): after `npm start` no flag is needed.
 */
import { parseArgs } from 'node:util';
import { decodeJwt } from 'jose';

export const USAGE = `Usage: npm run chat -- <workflow> [options]
       npm run chat -- [<workflow>] --chat <chat id>      rejoin a chat (history replayed)

Talk to a workflow's agents from the terminal: replies stream as they are written, a UI tool
call (the agent asking something) is answered at the prompt, and a dropped connection is
resumed where it stopped.

Options:
  --url <url>     the gateway (default: TESSERA_URL or http://localhost:8080)
  --token <jwt>   the user's token (default: TOKEN; on this machine, npm start's development token)
  --app <id>      the app (default: demo-app); a chat of another app starts at the runtime directly
  --chat <id>     rejoin this chat instead of starting one
  --direct        start the chat at the runtime (POST /api/chats/{app}/{workflow}/start) instead
                  of the session broker (POST /api/mozaiks/session, which adds backend context)
  -h, --help      this text

At the prompt: a line is a message, or the answer to the tool call the agent waits on (a JSON
object answers with exactly that object). /stop stops the agent's turn, /quit (or Ctrl-C, or
Ctrl-D) ends the program; the chat stays and can be rejoined with --chat.

Workflows of the examples: assistant, ask_user (a UI tool), greeter (speaks first), handoff.`;

export const DEFAULT_APP = 'demo-app';

export interface ChatOptions {
  workflow: string | null;
  url: string;
  token: string;
  appId: string;
  /** The app was named on the command line (the broker serves its configured app only). */
  appGiven: boolean;
  userId: string;
  chatId: string | null;
  direct: boolean;
  /** Where the token came from, said once at start. */
  tokenSource: 'flag' | 'env' | 'development';
}

/** A command line that cannot work; `usage`: the text of --help helps (a wrong flag, not a wrong token). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage = true,
  ) {
    super(message);
  }
}

/** The claims of `npm start`'s development token (tools/scripts/start.ts), for the given app. */
export function developmentClaims(appId: string) {
  return { sub: 'dev-user', apps: [appId], name: 'Developer', tier: 'pro', permissions: ['read', 'write'], roles: ['operator'] };
}

export function isLocal(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

export async function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Promise<ChatOptions | 'help'> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        app: { type: 'string' },
        chat: { type: 'string' },
        direct: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length > 1) throw new UsageError(`one workflow, not ${positionals.length}: ${positionals.join(' ')}`);
  const workflow = positionals[0] ?? null;
  if (!workflow && !values.chat) throw new UsageError('name a workflow (e.g. npm run chat -- assistant) or a chat to rejoin (--chat <id>)');

  const url = (values.url ?? env.TESSERA_URL ?? 'http://localhost:8080').replace(/\/+$/, '');
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) throw new UsageError(`--url must be an http(s) URL, not "${url}"`);
  const appId = values.app ?? DEFAULT_APP;

  let token = values.token ?? env.TOKEN ?? '';
  let tokenSource: ChatOptions['tokenSource'] = values.token ? 'flag' : 'env';
  if (!token) {
    if (!isLocal(url)) throw new UsageError(`no token: set TOKEN or pass --token (a development token is made only for a gateway on this machine, not ${url})`, false);
    // Loaded only here: the kit pulls in every service dependency, a second of start-up.
    const { DEV_JWT_SECRET, signToken } = await import('@tessera/kit');
    token = await signToken(env.JWT_SECRET || DEV_JWT_SECRET, developmentClaims(appId), { expiresIn: '12h' });
    tokenSource = 'development';
  }
  let sub: unknown;
  try {
    sub = decodeJwt(token).sub;
  } catch {
    throw new UsageError(`the token is not a JWT (${tokenSource === 'flag' ? '--token' : 'TOKEN'}); npm start prints one`, false);
  }
  if (typeof sub !== 'string' || !sub) throw new UsageError('the token names no user (no "sub" claim)', false);

  return { workflow, url, token, appId, appGiven: values.app !== undefined, userId: sub, chatId: values.chat ?? null, direct: values.direct, tokenSource };
}
