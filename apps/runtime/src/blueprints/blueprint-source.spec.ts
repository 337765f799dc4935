import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@tessera/kit';
import { BlueprintSource } from './blueprint-source';

/**
 * A stand-in agent manager on a real socket: answers GET /agents/<name> with the app's prompt
 * (`prompts[app][name]`), counts the requests, and can hold them (`hold`) or be down (`down`).
 */
async function agentManager() {
  const prompts: Record<string, Record<string, string>> = {};
  const requests: string[] = [];
  const held: Array<() => void> = [];
  const state = { hold: false, down: false };
  const answer = (req: IncomingMessage, res: ServerResponse) => {
    const app = String(req.headers['x-tessera-app']);
    const name = decodeURIComponent(req.url!.slice('/agents/'.length));
    if (state.down) return res.writeHead(503).end();
    const prompt = prompts[app]?.[name];
    if (prompt === undefined) return res.writeHead(404).end();
    const at = new Date(0).toISOString();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ name, description: '', system_prompt: prompt, mcp_servers: [], skills: [], status: 'active', created_at: at, updated_at: at }));
  };
  const server: Server = createServer((req, res) => {
    requests.push(`${String(req.headers['x-tessera-app'])} ${req.url}`);
    if (state.hold) held.push(() => answer(req, res));
    else answer(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const heldCount = async (n: number) => {
    while (held.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  const release = () => {
    state.hold = false;
    held.splice(0).forEach((a) => a());
  };
  return { url, prompts, requests, state, heldCount, release, close: () => new Promise((r) => server.close(r)) };
}

describe('BlueprintSource', () => {
  let am: Awaited<ReturnType<typeof agentManager>>;
  /** The cache's clock (lru-cache takes a start of 0 for "no TTL"). */
  let now = 1_000_000;
  const clock = { now: () => now };
  const made: BlueprintSource[] = [];
  const source = (ttlMs = 1_000) => {
    const s = new BlueprintSource(am.url, 'service-key', ttlMs, createLogger('blueprint-source-spec', 'error'), clock);
    made.push(s);
    return s;
  };

  beforeEach(async () => {
    am = await agentManager();
    now = 1_000_000;
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((s) => s.close()));
    await am.close();
  });

  it('asks the agent manager once for turns that resolve a blueprint together, and keeps it for the TTL', async () => {
    am.prompts.app1 = { helper: 'be brief' };
    const s = source();
    am.state.hold = true;
    const turns = Promise.all([s.resolve('helper', 'app1'), s.resolve('helper', 'app1'), s.resolve('helper', 'app1')]);
    await am.heldCount(1);
    am.release();
    expect(await turns).toEqual(['be brief', 'be brief', 'be brief']);
    now += 999;
    expect(await s.resolve('helper', 'app1')).toBe('be brief');
    expect(am.requests).toEqual(['app1 /agents/helper']);

    am.prompts.app1.helper = 'be thorough';
    now += 2;
    expect(await s.resolve('helper', 'app1')).toBe('be thorough');
    expect(am.requests).toHaveLength(2);
  });

  it('keeps apps apart: the same name in two apps is two blueprints, and a drop names its app', async () => {
    am.prompts.app1 = { helper: 'one' };
    am.prompts.app2 = { helper: 'two' };
    const s = source();
    expect([await s.resolve('helper', 'app1'), await s.resolve('helper', 'app2')]).toEqual(['one', 'two']);
    am.prompts.app1.helper = 'one, edited';
    am.prompts.app2.helper = 'two, edited';
    s.drop('helper', 'app1');
    expect([await s.resolve('helper', 'app1'), await s.resolve('helper', 'app2')]).toEqual(['one, edited', 'two']);
    s.drop('helper');
    expect(await s.resolve('helper', 'app2')).toBe('two, edited');
  });

  it('answers a turn whose request was under way at a drop, but does not keep that copy', async () => {
    am.prompts.app1 = { helper: 'before' };
    const s = source();
    am.state.hold = true;
    const turn = s.resolve('helper', 'app1');
    await am.heldCount(1);
    s.drop('helper', 'app1');
    am.release();
    expect(await turn).toBe('before');
    am.prompts.app1.helper = 'after';
    expect(await s.resolve('helper', 'app1')).toBe('after');
    expect(am.requests).toHaveLength(2);
  });

  it('serves a copy past its TTL while the agent manager is down, and asks again each time', async () => {
    am.prompts.app1 = { helper: 'cached' };
    const s = source();
    expect(await s.resolve('helper', 'app1')).toBe('cached');
    am.state.down = true;
    now += 5_000;
    expect(await s.resolve('helper', 'app1')).toBe('cached');
    expect(await s.resolve('helper', 'app1')).toBe('cached');
    expect(am.requests).toHaveLength(3);
    am.state.down = false;
    am.prompts.app1.helper = 'back';
    expect(await s.resolve('helper', 'app1')).toBe('back');
  });

  it('refuses a blueprint it never had when the agent manager is down, and one that does not exist', async () => {
    const s = source();
    await expect(s.resolve('ghost', 'app1')).rejects.toThrow('blueprint "ghost" does not exist in the agent manager');
    am.state.down = true;
    await expect(s.resolve('helper', 'app1')).rejects.toThrow('blueprint "helper" could not be loaded: the agent manager answered 503; try again');
  });

  it('after a drop of everything (a resync), asks again for each', async () => {
    am.prompts.app1 = { a: 'A', b: 'B' };
    const s = source();
    await s.resolve('a', 'app1');
    await s.resolve('b', 'app1');
    s.drop();
    await s.resolve('a', 'app1');
    await s.resolve('b', 'app1');
    expect(am.requests).toEqual(['app1 /agents/a', 'app1 /agents/b', 'app1 /agents/a', 'app1 /agents/b']);
  });
});
