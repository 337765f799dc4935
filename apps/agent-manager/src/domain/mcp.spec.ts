import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namesAreKeys, resolveMcpServers, unresolvedOf } from './mcp';

let project: string;
const github = { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'] };

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'am-mcp-'));
  await writeFile(join(project, '.mcp.json'), JSON.stringify({ mcpServers: { github } }));
});
afterAll(() => rm(project, { recursive: true, force: true }));

describe('resolveMcpServers', () => {
  test('a definition comes from the request, then the agent, then the project; a name defined nowhere is kept without one', async () => {
    const r = await resolveMcpServers(['filesystem', { name: 'fs', command: 'mcp-fs', args: ['/srv'] }, 'own', 'github'], { own: { command: 'mine', args: [] } }, project);
    expect(r.names).toEqual(['filesystem', 'fs', 'own', 'github']);
    expect(r.servers).toEqual({ fs: { command: 'mcp-fs', args: ['/srv'] }, own: { command: 'mine', args: [] }, github });
    expect(unresolvedOf(r.names, r.servers)).toEqual(['filesystem']);
  });

  test('with no project .mcp.json every bare name is unresolved, none refused', async () => {
    const r = await resolveMcpServers(['github'], {}, join(project, 'nowhere'));
    expect(r).toEqual({ names: ['github'], servers: {} });
    expect(unresolvedOf(r.names, r.servers)).toEqual(['github']);
  });

  test('a name listed twice is a 400 naming the second entry', async () => {
    await expect(resolveMcpServers(['github', { name: 'github', command: 'x', args: [] }], {}, project)).rejects.toMatchObject({ status: 400, message: expect.stringContaining('body.mcp_servers.1') });
    await expect(resolveMcpServers(['ghost', 'ghost'], {}, project)).rejects.toMatchObject({ status: 400 });
  });
});

test('namesAreKeys: the names say no more than the definitions, in their order', () => {
  expect(namesAreKeys([], {})).toBe(true);
  expect(namesAreKeys(['a', 'b'], { a: 1, b: 2 })).toBe(true);
  expect(namesAreKeys(['b', 'a'], { a: 1, b: 2 })).toBe(false);
  expect(namesAreKeys(['a', 'c'], { a: 1 })).toBe(false);
  expect(namesAreKeys(['a'], { a: 1, b: 2 })).toBe(false);
});
