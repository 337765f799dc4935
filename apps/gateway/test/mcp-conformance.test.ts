import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { closedPort } from '@tessera/kit/testing';
import { token, type TestGateway } from './support';
import { ROOT, startTwoInstanceStack, type TwoInstanceStack } from './stack';

/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against
 * Tessera's MCP endpoint through the gateway, with two runtime instances behind it as `npm start`
 * runs them. The suite's client sends no token, so a test-only proxy in front of the gateway adds
 * one (the endpoint itself takes nothing without one). Scenarios that test features Tessera does
 * not offer are listed in NOT_APPLICABLE, each with the reason; the suite's own baseline check
 * (`--expected-failures`) fails the run if one of them starts passing, and on any failure of the
 * others. The report is in docs/protocols/mcp.md.
 */

const SERVICE_KEY = 'mcp-conformance-service-key-01234567';
const APP = 'demo-app';
const CLI = join(ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** The package is built for Node 22 (fs.globSync, used only by its tier-check); on older Node this loader stands in. */
const NODE20 = join(__dirname, 'fixtures/conformance/node20.mjs');

let stack: TwoInstanceStack;
let gw: TestGateway;
let proxy: Server;
let url: string;
let out: string;

/** Forwards every request to the gateway as it came, with the user's bearer token added. */
function tokenProxy(target: string, bearer: string): Server {
  return createServer((req, res) => {
    const upstream = request(new URL(req.url ?? '/', target), { method: req.method, headers: { ...req.headers, authorization: `Bearer ${bearer}` } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
}

beforeAll(async () => {
  const proxyPort = await closedPort();
  // The suite's DNS-rebinding scenario sends the URL's own origin and expects it to be accepted.
  const origins = `http://127.0.0.1:${proxyPort}, http://localhost:${proxyPort}`;
  stack = await startTwoInstanceStack('mcpc', SERVICE_KEY, { runtime: { CORS_ORIGINS: origins }, gateway: { CORS_ORIGINS: origins } });
  gw = stack.gw;
  proxy = tokenProxy(gw.url, await token(`conformance-${randomBytes(3).toString('hex')}`, { apps: [APP] }));
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${proxyPort}/api/mcp/${APP}`;
  out = mkdtempSync(join(tmpdir(), 'tessera-mcp-conformance-'));
}, 90_000);

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await stack?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

/**
 * Scenarios that test what Tessera does not offer, each with the reason, and what its failure
 * says (so that it fails for that reason and no other). Everything else must pass.
 */
const NOT_APPLICABLE: Record<string, { reason: string; says: RegExp }> = {
  'logging-set-level': { reason: 'no logging capability: turns are logged on the platform, not sent to the client', says: /Method not found/ },
  'tools-call-with-logging': { reason: 'no logging capability (and no fixture tool `test_tool_with_logging`)', says: /Method not found|No log/ },
  'completion-complete': { reason: 'no completions capability: there are no prompts or resource templates to complete', says: /Method not found/ },
  ...Object.fromEntries(
    ['resources-list', 'resources-read-text', 'resources-read-binary', 'resources-templates-read', 'resources-subscribe', 'resources-unsubscribe'].map((id) => [id, { reason: 'no resources: workflows are offered as tools only', says: /Method not found/ }]),
  ),
  ...Object.fromEntries(
    ['prompts-list', 'prompts-get-simple', 'prompts-get-with-args', 'prompts-get-embedded-resource', 'prompts-get-with-image'].map((id) => [id, { reason: 'no prompts: workflows are offered as tools only', says: /Method not found/ }]),
  ),
  'tools-call-image': { reason: 'fixture tool `test_image_content`: a Tessera tool is a workflow and answers with text (and structuredContent)', says: /No image content/ },
  'tools-call-audio': { reason: 'fixture tool `test_audio_content`: a Tessera tool answers with text', says: /No audio content/ },
  'tools-call-embedded-resource': { reason: 'fixture tool `test_embedded_resource`: a Tessera tool answers with text', says: /No resource content/ },
  'tools-call-mixed-content': { reason: 'fixture tool `test_multiple_content_types`: a Tessera tool answers with text', says: /Expected multiple content items/ },
  'tools-call-with-progress': {
    reason: 'fixture tool `test_tool_with_progress`, called with no arguments (every Tessera tool takes a message); progress of a real turn is tested in mcp.test.ts',
    says: /No progress notifications/,
  },
  'tools-call-sampling': { reason: 'workflows do not ask the client for sampling', says: /did not request sampling/ },
  'tools-call-elicitation': { reason: 'workflows do not ask the client for elicitation', says: /did not request elicitation/ },
  'elicitation-sep1034-defaults': { reason: 'workflows do not ask the client for elicitation', says: /did not request elicitation/ },
  'elicitation-sep1330-enums': { reason: 'workflows do not ask the client for elicitation', says: /did not request elicitation/ },
  'json-schema-2020-12': { reason: 'fixture tool `json_schema_2020_12_tool` with a hand-written schema; Tessera’s input schemas come from its contracts', says: /json_schema_2020_12_tool' not found/ },
  'server-sse-polling': {
    reason: 'fixture tool `test_reconnection`, which closes its stream mid-call; resuming a cut stream on any instance is tested in mcp.test.ts and mcp-instances.test.ts',
    says: /Tool call failed/,
  },
};

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  errorMessage?: string;
}

test('the official MCP conformance suite passes every scenario that applies, and the others fail only for their stated reason', async () => {
  const baseline = join(out, 'not-applicable.yml');
  writeFileSync(baseline, `server:\n${Object.keys(NOT_APPLICABLE).map((id) => `  - ${id}\n`).join('')}`);
  const node = Number(process.versions.node.split('.')[0]) < 22 ? ['--import', NODE20] : [];
  const args = [...node, CLI, 'server', '--suite', 'all', '--url', url, '--expected-failures', baseline, '-o', join(out, 'results')];
  // The CLI exits non-zero on any failure not in the baseline, and on a baseline entry that passes.
  const run = await promisify(execFile)(process.execPath, args, { cwd: out, timeout: 50_000 }).then(
    (r) => ({ ...r, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => e,
  );
  const results = new Map<string, Check[]>();
  for (const dir of readdirSync(join(out, 'results'))) {
    const scenario = /^server-(.+)-\d{4}-\d\d-\d\dT/.exec(dir)?.[1] as string;
    results.set(scenario, JSON.parse(readFileSync(join(out, 'results', dir, 'checks.json'), 'utf8')) as Check[]);
  }
  const failures = (id: string) => (results.get(id) ?? []).filter((c) => c.status === 'FAILURE');
  const applicable = [...results.keys()].filter((id) => !(id in NOT_APPLICABLE)).sort();
  expect({ code: run.code, failures: applicable.flatMap((id) => failures(id).map((c) => `${id}: ${c.id}: ${c.errorMessage}`)) }).toEqual({ code: 0, failures: [] });
  // Every scenario of the suite ran; the ones that apply each passed at least one check.
  expect(results.size).toBeGreaterThanOrEqual(32);
  for (const id of applicable) expect([id, (results.get(id) ?? []).some((c) => c.status === 'SUCCESS')]).toEqual([id, true]);
  expect(applicable).toEqual(expect.arrayContaining(['server-initialize', 'ping', 'tools-list', 'tools-call-error', 'server-sse-multiple-streams', 'dns-rebinding-protection']));
  for (const [id, { says }] of Object.entries(NOT_APPLICABLE)) {
    expect([id, failures(id).length > 0 && failures(id).every((c) => says.test(c.errorMessage ?? ''))]).toEqual([id, true]);
  }
}, 60_000);
