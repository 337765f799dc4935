/**
 * The operator's agents tab over HTTP (document 001 §2.2): exact shapes, the files they land in,
 * every refusal a client can cause, versions and rollback, and the announcements on Redis.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVICE_KEY, http, ISO, serveProjectForThisFile, until, type Changes, type Instance, type Project } from './harness';

let project: Project, am: Instance, bus: Changes, op: string, usr: string;
serveProjectForThisFile(
  'crud',
  // A project-wide MCP server definition, as the project's tools keep it.
  { prepare: (p) => writeFile(join(p.dir, '.mcp.json'), JSON.stringify({ mcpServers: { github: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'] } } })) },
  (s) => ({ project, am, bus, op, usr } = s),
);

const reviewer = { name: 'code-reviewer', description: 'Reviews code and suggests improvements', system_prompt: 'You are a code reviewer...', mcp_servers: ['github'], skills: ['pdf'] };

test('create, read, list, patch, status and delete with the shapes of document 001 §2.2', async () => {
  const created = await http(am.url, 'POST', '/agents', { token: op, body: reviewer });
  expect(created.status).toBe(201);
  expect(created.body).toEqual({ ...reviewer, unresolved_mcp_servers: [], status: 'active', created_at: expect.stringMatching(ISO), updated_at: created.body.created_at });

  expect((await http(am.url, 'GET', '/agents/code-reviewer', { token: usr })).body).toEqual(created.body);
  expect((await http(am.url, 'GET', '/agents', { token: usr })).body).toEqual([created.body]);

  // The command-line tools' layout, plus the status file.
  const dir = join(project.agents, 'code-reviewer');
  expect((await readdir(dir)).sort()).toEqual(['agent.json', 'agent.mcp.json', 'agent.status.json', 'agent.system-prompt.md']);
  expect(JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8'))).toEqual({ name: 'code-reviewer', description: reviewer.description, skills: ['pdf'], created_at: created.body.created_at, updated_at: created.body.updated_at });
  expect(await readFile(join(dir, 'agent.system-prompt.md'), 'utf8')).toBe('You are a code reviewer...');
  expect(JSON.parse(await readFile(join(dir, 'agent.mcp.json'), 'utf8'))).toEqual({ mcpServers: { github: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'] } } });
  expect(JSON.parse(await readFile(join(dir, 'agent.status.json'), 'utf8'))).toMatchObject({ status: 'active' });

  await new Promise((r) => setTimeout(r, 5));
  const patched = await http(am.url, 'PATCH', '/agents/code-reviewer', { token: op, body: { description: 'Updated description', system_prompt: 'Updated prompt...' } });
  expect(patched.status).toBe(200);
  expect(patched.body).toEqual({ ...created.body, description: 'Updated description', system_prompt: 'Updated prompt...', updated_at: expect.stringMatching(ISO) });
  expect(patched.body.updated_at > created.body.updated_at).toBe(true);

  const inactive = await http(am.url, 'PATCH', '/agents/code-reviewer/status', { token: op, body: { status: 'inactive' } });
  expect(inactive.status).toBe(200);
  expect(inactive.body).toEqual({ ...patched.body, status: 'inactive', updated_at: expect.stringMatching(ISO) });
  expect(JSON.parse(await readFile(join(dir, 'agent.status.json'), 'utf8'))).toMatchObject({ status: 'inactive' });

  const deleted = await http(am.url, 'DELETE', '/agents/code-reviewer', { token: op });
  expect(deleted).toEqual({ status: 200, body: { success: true, message: 'Agent deleted successfully' } });
  expect((await http(am.url, 'GET', '/agents/code-reviewer', { token: op })).status).toBe(404);
  expect(await readdir(project.agents)).toEqual([]);

  const seen = await until(() => bus.changes.filter((c) => c.name === 'code-reviewer').length >= 4 && bus.changes.filter((c) => c.name === 'code-reviewer'), 5_000, 'announcements');
  expect(seen.map((c) => [c.kind, c.version, c.source, c.status])).toEqual([
    ['created', 1, 'api', 'active'],
    ['updated', 2, 'api', 'active'],
    ['updated', 3, 'api', 'inactive'],
    ['deleted', 4, 'api', null],
  ]);
});

test('every change keeps the previous version; a restore rolls the content back as a new version', async () => {
  const name = 'support';
  await http(am.url, 'POST', '/agents', { token: op, body: { name, description: 'd1', system_prompt: 'prompt one' } });
  await http(am.url, 'PATCH', `/agents/${name}`, { token: op, body: { system_prompt: 'prompt two' } });
  // A PATCH that changes nothing makes no version.
  await http(am.url, 'PATCH', `/agents/${name}`, { token: op, body: { system_prompt: 'prompt two' } });
  await http(am.url, 'PATCH', `/agents/${name}/status`, { token: op, body: { status: 'inactive' } });

  const h = await http(am.url, 'GET', `/agents/${name}/versions`, { token: usr });
  expect(h.status).toBe(200);
  expect(h.body.versions.map((v: any) => [v.version, v.change, v.agent.system_prompt, v.agent.status])).toEqual([
    [3, 'status', 'prompt two', 'inactive'],
    [2, 'updated', 'prompt two', 'active'],
    [1, 'created', 'prompt one', 'active'],
  ]);
  expect((await http(am.url, 'GET', `/agents/${name}/versions/1`, { token: usr })).body).toEqual(h.body.versions[2]);
  expect((await http(am.url, 'GET', `/agents/${name}/versions?limit=1&before=3`, { token: usr })).body.versions.map((v: any) => v.version)).toEqual([2]);

  const restored = await http(am.url, 'POST', `/agents/${name}/versions/1/restore`, { token: op });
  expect(restored.status).toBe(200);
  // The content of version 1; the status stays what an operator last set.
  expect(restored.body).toMatchObject({ name, description: 'd1', system_prompt: 'prompt one', status: 'inactive' });
  const after = (await http(am.url, 'GET', `/agents/${name}/versions`, { token: usr })).body.versions[0];
  expect(after).toMatchObject({ version: 4, change: 'restored', restored_from: 1 });

  // History outlives the agent: what a past session ran with stays readable, and can be brought back.
  await http(am.url, 'DELETE', `/agents/${name}`, { token: op });
  const gone = (await http(am.url, 'GET', `/agents/${name}/versions`, { token: usr })).body.versions;
  expect(gone[0]).toMatchObject({ version: 5, change: 'deleted', agent: null });
  expect((await http(am.url, 'POST', `/agents/${name}/versions/5/restore`, { token: op })).status).toBe(409);
  expect((await http(am.url, 'POST', `/agents/${name}/versions/9/restore`, { token: op })).status).toBe(404);
  const back = await http(am.url, 'POST', `/agents/${name}/versions/2/restore`, { token: op });
  expect(back.status).toBe(200);
  expect(back.body).toMatchObject({ system_prompt: 'prompt two', status: 'active' });
  expect((await http(am.url, 'GET', '/agents/never-was/versions', { token: usr })).status).toBe(404);
});

test('400 names the field; 409 for a taken name; 404 for an unknown agent', async () => {
  const bad = async (body: unknown) => {
    const r = await http(am.url, 'POST', '/agents', { token: op, body });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('VALIDATION_FAILED');
    return r.body.error.message as string;
  };
  expect(await bad({ name: 'x', system_prompt: 'p' })).toContain('body.description');
  expect(await bad({ name: 'x', description: 'd' })).toContain('body.system_prompt');
  expect(await bad({ name: 'x', description: '   ', system_prompt: 'p' })).toContain('body.description');
  expect(await bad({ name: 'x', description: 'd', system_prompt: '  \n ' })).toContain('body.system_prompt');
  expect(await bad({ name: 'under_score', description: 'd', system_prompt: 'p' })).toContain('body.name: must be letters, digits and hyphens');
  expect(await bad({ name: 'a'.repeat(61), description: 'd', system_prompt: 'p' })).toContain('body.name');
  expect(await bad({ name: 'x', description: 'd', system_prompt: 'p', color: 'red' })).toContain('color');
  expect(await bad({ name: 'x', description: 'd', system_prompt: 'p', mcp_servers: ['github', 'github'] })).toContain('body.mcp_servers.1: MCP server "github" is listed twice');
  expect(await bad({ name: 'x', description: 'd', system_prompt: 'p', mcp_servers: 'github' })).toContain('body.mcp_servers');
  expect(await bad({ name: 'x', description: 'd', system_prompt: 'p', skills: [''] })).toContain('body.skills.0');
  expect(await bad({ name: 'x', description: 'd\u0000', system_prompt: 'p' })).toContain('body.description');
  expect((await http(am.url, 'POST', '/agents', { token: op, raw: '{"name":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
  expect(await readdir(project.agents)).not.toContain('x');

  expect((await http(am.url, 'POST', '/agents', { token: op, body: { name: 'taken', description: 'd', system_prompt: 'p' } })).status).toBe(201);
  const taken = await http(am.url, 'POST', '/agents', { token: op, body: { name: 'taken', description: 'other', system_prompt: 'other' } });
  expect(taken.status).toBe(409);
  expect(taken.body.error.message).toContain('"taken" already exists');
  expect((await http(am.url, 'GET', '/agents/taken', { token: op })).body.description).toBe('d');

  // A definition given inline; an unknown field, a bad status.
  const inline = await http(am.url, 'PATCH', '/agents/taken', { token: op, body: { mcp_servers: [{ name: 'fs', command: 'mcp-fs', args: ['/srv'] }] } });
  expect(inline.body.mcp_servers).toEqual(['fs']);
  expect((await http(am.url, 'PATCH', '/agents/taken', { token: op, body: { name: 'renamed' } })).status).toBe(400);
  expect((await http(am.url, 'PATCH', '/agents/taken/status', { token: op, body: { status: 'paused' } })).status).toBe(400);
  expect((await http(am.url, 'DELETE', '/agents/taken?force=maybe', { token: op })).status).toBe(400);

  for (const [method, path, body] of [
    ['GET', '/agents/nobody', undefined],
    ['PATCH', '/agents/nobody', { description: 'x' }],
    ['PATCH', '/agents/nobody/status', { status: 'inactive' }],
    ['DELETE', '/agents/nobody', undefined],
  ] as const) {
    const r = await http(am.url, method, path, { token: op, body });
    expect([method, path, r.status, r.body.error.code]).toEqual([method, path, 404, 'NOT_FOUND']);
  }
});

test('an MCP server name the project does not define is kept as given and reported unresolved, not refused (issue 18, item 5)', async () => {
  // Document 001 §2.2's list example: "github" is the project's (.mcp.json), "filesystem" is defined nowhere.
  const body = { name: 'lister', description: 'Lists things', system_prompt: 'You list.', mcp_servers: ['github', 'filesystem'], skills: ['pdf'] };
  const created = await http(am.url, 'POST', '/agents', { token: op, body });
  expect(created.status).toBe(201);
  expect(created.body).toEqual({ ...body, unresolved_mcp_servers: ['filesystem'], status: 'active', created_at: expect.stringMatching(ISO), updated_at: created.body.created_at });
  expect((await http(am.url, 'GET', '/agents/lister', { token: usr })).body).toEqual(created.body);
  expect((await http(am.url, 'GET', '/agents', { token: usr })).body).toContainEqual(created.body);

  // agent.mcp.json holds what can be started; agent.json keeps every name, in the order given.
  const dir = join(project.agents, 'lister');
  expect(JSON.parse(await readFile(join(dir, 'agent.mcp.json'), 'utf8'))).toEqual({ mcpServers: { github: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'] } } });
  expect(JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8'))).toMatchObject({ name: 'lister', mcp_servers: ['github', 'filesystem'] });

  // Other changes keep the names; only the document's names, so the same list again changes nothing.
  const described = await http(am.url, 'PATCH', '/agents/lister', { token: op, body: { description: 'Lists more' } });
  expect(described.body).toMatchObject({ mcp_servers: ['github', 'filesystem'], unresolved_mcp_servers: ['filesystem'] });
  const same = await http(am.url, 'PATCH', '/agents/lister', { token: op, body: { mcp_servers: ['github', 'filesystem'] } });
  expect(same.body.updated_at).toBe(described.body.updated_at);
  const versions = (await http(am.url, 'GET', '/agents/lister/versions', { token: usr })).body.versions;
  expect(versions.map((v: any) => [v.change, v.agent.unresolved_mcp_servers])).toEqual([
    ['updated', ['filesystem']],
    ['created', ['filesystem']],
  ]);

  // Once the project defines it, naming it again resolves it into agent.mcp.json.
  const mcpJson = join(project.dir, '.mcp.json');
  const before = await readFile(mcpJson, 'utf8');
  try {
    await writeFile(mcpJson, JSON.stringify({ mcpServers: { ...JSON.parse(before).mcpServers, filesystem: { command: 'mcp-fs', args: ['/srv'] } } }));
    const resolved = await http(am.url, 'PATCH', '/agents/lister', { token: op, body: { mcp_servers: ['github', 'filesystem'] } });
    expect(resolved.body).toMatchObject({ mcp_servers: ['github', 'filesystem'], unresolved_mcp_servers: [] });
    expect(Object.keys(JSON.parse(await readFile(join(dir, 'agent.mcp.json'), 'utf8')).mcpServers)).toEqual(['github', 'filesystem']);
    expect(JSON.parse(await readFile(join(dir, 'agent.json'), 'utf8'))).not.toHaveProperty('mcp_servers');
  } finally {
    await writeFile(mcpJson, before);
  }
  // Dropping a server drops it; the rollback to the first version brings the unresolved name back.
  const dropped = await http(am.url, 'PATCH', '/agents/lister', { token: op, body: { mcp_servers: ['github'] } });
  expect(dropped.body).toMatchObject({ mcp_servers: ['github'], unresolved_mcp_servers: [] });
  const restored = await http(am.url, 'POST', '/agents/lister/versions/1/restore', { token: op });
  expect(restored.body).toMatchObject({ description: 'Lists things', mcp_servers: ['github', 'filesystem'], unresolved_mcp_servers: ['filesystem'] });
  expect((await http(am.url, 'GET', '/agents/lister', { token: usr })).body).toEqual(restored.body);
});

test('reads need a valid token or the service key; changes need the operator role', async () => {
  expect((await http(am.url, 'GET', '/agents')).status).toBe(401);
  expect((await http(am.url, 'GET', '/agents', { token: 'not.a.token' })).status).toBe(401);
  // The service key names the app it acts for (blueprints are an app's).
  expect((await http(am.url, 'GET', '/agents', { headers: { 'x-tessera-service-key': SERVICE_KEY, 'x-tessera-app': 'app1' } })).status).toBe(200);
  expect((await http(am.url, 'GET', '/agents', { headers: { 'x-tessera-service-key': SERVICE_KEY } })).status).toBe(400);
  expect((await http(am.url, 'GET', '/agents', { headers: { 'x-tessera-service-key': 'wrong-key-0123456789' } })).status).toBe(401);
  const body = { name: 'by-user', description: 'd', system_prompt: 'p' };
  const refused = await http(am.url, 'POST', '/agents', { token: usr, body });
  expect(refused.status).toBe(403);
  expect(refused.body.error.message).toContain('operator');
  // The service key reads; it does not write.
  expect((await http(am.url, 'POST', '/agents', { headers: { 'x-tessera-service-key': SERVICE_KEY, 'x-tessera-app': 'app1' }, body })).status).toBe(401);
  expect((await http(am.url, 'DELETE', '/agents/taken', { token: usr })).status).toBe(403);
  expect((await http(am.url, 'POST', '/agents/taken/versions/1/restore', { token: usr })).status).toBe(403);
  expect(await readdir(project.agents)).not.toContain('by-user');
  expect((await http(am.url, 'GET', '/health')).status).toBe(200);
  expect((await http(am.url, 'GET', '/ready')).status).toBe(200);
  expect((await http(am.url, 'GET', '/openapi.json')).body.paths['/agents/{name}/versions/{version}/restore']).toBeDefined();
});
