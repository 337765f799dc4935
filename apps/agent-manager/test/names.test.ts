/** A name is a folder name: none can reach outside the agents folder, through a body or a path. */
import { readdir } from 'node:fs/promises';
import { http, operator, projectDir, startAgentManager, type Instance } from './harness';

let project: Awaited<ReturnType<typeof projectDir>>;
let am: Instance;
let op: string;

beforeAll(async () => {
  op = await operator();
  project = await projectDir('names');
  am = await startAgentManager(project.dir);
});
afterAll(async () => {
  await am?.close();
  await project?.remove();
});

const HOSTILE = ['..', '.', '../escape', 'a/b', 'a\\b', '/etc', '.hidden', '-dash-first', 'a%2fb', 'nul\u0000byte', 'con', 'CON', 'Aux', 'lpt1', 'com9', 'a.b', 'émile', ' spaced', 'x'.repeat(61), ''];

test('hostile names in a body are refused with 400 and nothing is written anywhere', async () => {
  for (const name of HOSTILE) {
    const r = await http(am.url, 'POST', '/agents', { token: op, body: { name, description: 'd', system_prompt: 'p' } });
    expect([name, r.status, r.body.error?.message]).toEqual([name, 400, expect.stringContaining('body.name')]);
  }
  expect(await readdir(project.agents)).toEqual([]);
  expect((await readdir(project.dir)).sort()).toEqual(['.agent-orchestrator']);
});

test('hostile names in a path: 400 (or 404 when the path names another route), never a file outside', async () => {
  await http(am.url, 'POST', '/agents', { token: op, body: { name: 'real', description: 'd', system_prompt: 'p' } });
  const cases: [string, number][] = [
    ['/agents/..', 400],
    ['/agents/.', 400],
    ['/agents/..%2f..%2fetc%2fpasswd', 400],
    ['/agents/a%2fb', 400],
    ['/agents/%2e%2e', 400],
    ['/agents/real%00', 400],
    ['/agents/con', 400],
    ['/agents/%5c..%5c', 400],
    ['/agents/%ff', 400],
    ['/agents/a/b', 404],
  ];
  for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
    for (const [path, status] of cases) {
      const r = await http(am.url, method, path, { token: op, body: method === 'PATCH' ? { description: 'x' } : undefined });
      expect([method, path, r.status]).toEqual([method, path, status]);
    }
  }
  expect((await http(am.url, 'PATCH', '/agents/..%2freal/status', { token: op, body: { status: 'inactive' } })).status).toBe(400);
  expect((await http(am.url, 'GET', '/agents/..%2freal/versions', { token: op })).status).toBe(400);
  expect((await http(am.url, 'POST', '/agents/real/versions/..%2f1/restore', { token: op })).status).toBe(400);
  expect((await http(am.url, 'GET', '/agents/real', { token: op })).body).toMatchObject({ description: 'd', status: 'active' });
  expect(await readdir(project.agents)).toEqual(['real']);
});
