import { authenticatesInProtocol, isDocumentUpload, isIngest, isInternal, isPublic, isUpload, matchRoute, publicPath, responseBudgetOf, ROUTES } from './routing';

const target = (url: string) => {
  const m = matchRoute(url);
  return m.ok ? `${m.match.route.service} ${m.match.upstreamPath}` : m.reason;
};

describe('routing table', () => {
  it('keeps the runtime’s documented paths as they are', () => {
    expect(target('/api/workflows')).toBe('runtime /api/workflows');
    expect(target('/api/workflows/assistant/transport')).toBe('runtime /api/workflows/assistant/transport');
    expect(target('/api/chats/demo-app/assistant/start')).toBe('runtime /api/chats/demo-app/assistant/start');
    expect(target('/api/chat/upload')).toBe('runtime /api/chat/upload');
    expect(target('/api/sessions/recent/demo-app/alice')).toBe('runtime /api/sessions/recent/demo-app/alice');
    expect(target('/api/tool-call/respond')).toBe('runtime /api/tool-call/respond');
    expect(target('/chat/demo-app/c1/alice/input')).toBe('runtime /chat/demo-app/c1/alice/input');
    expect(target('/ws/assistant/demo-app/c1/alice?access_token=t')).toBe('runtime /ws/assistant/demo-app/c1/alice?access_token=t');
    expect(target('/api/v1/mission-ally/ws?mission_id=m&token=t')).toBe('runtime /api/v1/mission-ally/ws?mission_id=m&token=t');
    expect(target('/api/agui/demo-app/greeter')).toBe('runtime /api/agui/demo-app/greeter');
    expect(target('/api/aguix/demo-app/greeter')).toBe('no_route');
    expect(target('/api/a2a/demo-app/greeter')).toBe('runtime /api/a2a/demo-app/greeter');
    expect(target('/api/a2a/demo-app/.well-known/agent-card.json')).toBe('runtime /api/a2a/demo-app/.well-known/agent-card.json');
    expect(target('/api/a2ax/demo-app/greeter')).toBe('no_route');
    expect(target('/api/mcp/demo-app')).toBe('runtime /api/mcp/demo-app');
    expect(target('/.well-known/oauth-protected-resource/api/mcp/demo-app')).toBe('runtime /.well-known/oauth-protected-resource/api/mcp/demo-app');
    expect(target('/.well-known/oauth-protected-resource/api/chats')).toBe('no_route');
  });

  it('sends the broker its paths and gives every other service a prefix of its own', () => {
    expect(target('/api/mozaiks/session')).toBe('broker /api/mozaiks/session');
    expect(target('/api/observability/sessions?limit=5')).toBe('observability /sessions?limit=5');
    expect(target('/api/observability/ws')).toBe('observability /ws');
    expect(target('/api/observability')).toBe('observability /');
    expect(target('/api/agents')).toBe('agents /agents');
    expect(target('/api/agents/planner/status')).toBe('agents /agents/planner/status');
    expect(target('/api/documents/tags')).toBe('documents /documents/tags');
    expect(target('/api/bridge/session/bootstrap')).toBe('bridge /api/session/bootstrap');
  });

  it('matches whole segments only, and refuses paths that could mean something else behind it', () => {
    expect(target('/api/chatsx/1')).toBe('no_route');
    expect(target('/api/workflowsecret')).toBe('no_route');
    expect(target('/health')).toBe('no_route');
    expect(target('/api/workflows/../chats/x')).toBe('bad_path');
    expect(target('/api/workflows/%2E%2E/chats')).toBe('bad_path');
    expect(target('/api/workflows/a%2Fb')).toBe('bad_path');
    expect(target('/api/workflows/./x')).toBe('bad_path');
    expect(target('/api//workflows')).toBe('bad_path');
    expect(target('/api/chats/a\\b')).toBe('bad_path');
  });

  it('names the public path of a service path, or none when the gateway does not route it', () => {
    expect(publicPath('agents', '/agents/{name}')).toBe('/api/agents/{name}');
    expect(publicPath('bridge', '/api/session/{sessionId}/ws')).toBe('/api/bridge/session/{sessionId}/ws');
    expect(publicPath('observability', '/sessions/{session_id}/stop')).toBe('/api/observability/sessions/{session_id}/stop');
    expect(publicPath('runtime', '/api/chats/{app_id}/{workflow_name}/start')).toBe('/api/chats/{app_id}/{workflow_name}/start');
    expect(publicPath('runtime', '/health')).toBeNull();
    expect(publicPath('agents', '/health')).toBeNull();
    expect(publicPath('broker', '/api/mozaiks/session')).toBe('/api/mozaiks/session');
    expect(publicPath('broker', '/openapi.json')).toBeNull();
  });

  it('routes no service’s internal paths: its probes, metrics, API documents, /internal', () => {
    for (const rest of ['metrics', 'ready', 'health', 'openapi.json', 'asyncapi.json', 'AsyncAPI.json', 'internal', 'internal/x', 'METRICS', 'Health/', '%6Detrics', 'OpenAPI.JSON']) {
      expect(target(`/api/observability/${rest}`)).toBe('no_route');
      expect(target(`/api/observability/${rest}?x=1`)).toBe('no_route');
    }
    expect(target('/api/bridge/internal/x')).toBe('no_route');
    expect(target('/api/bridge/asyncapi.json')).toBe('bridge /api/asyncapi.json');
    // The gateway's own documents are no service's: they fall through to the gateway's routes.
    expect(target('/asyncapi.json')).toBe('no_route');
    expect(target('/openapi.json')).toBe('no_route');
    expect(target('/api/observability/api/internal')).toBe('no_route');
    // Only at the service's root: an agent or a document may be named so.
    expect(target('/api/agents/health')).toBe('agents /agents/health');
    expect(target('/api/documents/metrics')).toBe('documents /documents/metrics');
    expect(target('/api/observability/sessions/metrics')).toBe('observability /sessions/metrics');
    expect(target('/api/observability/metricsx')).toBe('observability /metricsx');
    expect(target('/api/bridge/health')).toBe('bridge /api/health');
    // A route may say otherwise.
    const open = ROUTES.map((r) => (r.service === 'observability' ? { ...r, internal: ['/metrics'] } : r));
    const m = matchRoute('/api/observability/health', open);
    expect(m.ok && m.match.upstreamPath).toBe('/health');
    expect(matchRoute('/api/observability/metrics', open)).toEqual({ ok: false, reason: 'no_route' });
    expect(isInternal('/x/metrics')).toBe(false);
    expect(isInternal('/%zz')).toBe(false);
    expect(isInternal('/metrics//')).toBe(true);
    expect(publicPath('observability', '/metrics')).toBeNull();
    expect(publicPath('observability', '/health')).toBeNull();
    expect(publicPath('bridge', '/api/internal/x')).toBeNull();
  });

  it('lets (when configured) workflow discovery through without a token, not preflight (the gateway answers it)', () => {
    expect(isPublic('OPTIONS', '/api/chats/x', { publicWorkflows: true })).toBe(false);
    expect(isPublic('GET', '/api/workflows', { publicWorkflows: true })).toBe(true);
    expect(isPublic('GET', '/api/workflows/assistant/transport', { publicWorkflows: true })).toBe(true);
    expect(isPublic('POST', '/api/workflows', { publicWorkflows: true })).toBe(false);
    expect(isPublic('GET', '/api/workflows', { publicWorkflows: false })).toBe(false);
    expect(isPublic('GET', '/api/sessions/demo-app/alice', { publicWorkflows: true })).toBe(false);
  });

  it('leaves the MCP endpoint’s token to the runtime (its 401 names the metadata) and serves that metadata without one', () => {
    for (const method of ['POST', 'GET', 'DELETE']) expect(isPublic(method, '/api/mcp/demo-app', { publicWorkflows: false })).toBe(true);
    expect(isPublic('GET', '/.well-known/oauth-protected-resource/api/mcp/demo-app', { publicWorkflows: false })).toBe(true);
    expect(isPublic('POST', '/.well-known/oauth-protected-resource/api/mcp/demo-app', { publicWorkflows: false })).toBe(false);
    expect(isPublic('GET', '/api/mcp/demo-app/other', { publicWorkflows: false })).toBe(false);
  });

  it('lets observability ingest through without a token, and nothing else of observability', () => {
    expect(isPublic('POST', '/api/observability/events', { publicWorkflows: false })).toBe(true);
    expect(isPublic('POST', '/api/observability/v1/traces', { publicWorkflows: false })).toBe(true);
    expect(isPublic('GET', '/api/observability/events/s1', { publicWorkflows: true })).toBe(false);
    expect(isPublic('GET', '/api/observability/events', { publicWorkflows: true })).toBe(false);
    expect(isPublic('POST', '/api/observability/events/s1', { publicWorkflows: true })).toBe(false);
    expect(isPublic('GET', '/api/observability/sessions', { publicWorkflows: true })).toBe(false);
    expect(isPublic('POST', '/api/observability/sessions/s1/stop', { publicWorkflows: true })).toBe(false);
    expect(isIngest('POST', '/api/observability/v1/traces')).toBe(true);
    expect(isIngest('POST', '/api/observability/v1/traces/')).toBe(false);
  });

  it('knows the upload routes', () => {
    expect(isUpload('POST', '/api/chat/upload')).toBe(true);
    expect(isUpload('POST', '/api/documents')).toBe(false);
    expect(isDocumentUpload('POST', '/api/documents')).toBe(true);
    expect(isDocumentUpload('GET', '/api/documents')).toBe(false);
    expect(isDocumentUpload('POST', '/api/documents/tags')).toBe(false);
    expect(isUpload('POST', '/api/chat/start')).toBe(false);
    expect(isUpload('GET', '/api/chat/upload')).toBe(false);
  });

  it("gives the bridge's request/response event as long as its longest timeoutMs, and every other request UPSTREAM_TIMEOUT_MS", () => {
    for (const path of ['/api/bridge/session/s1/events/request', '/api/bridge/session/s1/events/request/', '/API/Bridge/Session/s1/Events/Request']) {
      expect(responseBudgetOf('POST', path, 60_000)).toBe(190_000);
    }
    expect(responseBudgetOf('POST', '/api/bridge/session/s1/events/request', 300_000)).toBe(300_000);
    for (const [method, path] of [
      ['GET', '/api/bridge/session/s1/events/request'],
      ['POST', '/api/bridge/session/s1/events'],
      ['POST', '/api/bridge/session/s1/events/request/r1/response'],
      ['POST', '/api/bridge/session/bootstrap'],
      ['POST', '/api/chats/app/wf/start'],
    ]) {
      expect(responseBudgetOf(method, path, 60_000)).toBe(60_000);
    }
  });
});

describe('sockets that refuse in their own protocol', () => {
  it("are Mission Ally's and the bridge's session socket, nothing else of the bridge", () => {
    expect(authenticatesInProtocol('/api/v1/mission-ally/ws')).toBe(true);
    expect(authenticatesInProtocol('/api/bridge/session/0f25459a-4f7f-4f0f-b4f2-12d2c73c6a4f/ws')).toBe(true);
    expect(authenticatesInProtocol('/api/bridge/session/servers')).toBe(false);
    expect(authenticatesInProtocol('/api/bridge/session/a/b/ws')).toBe(false);
    expect(authenticatesInProtocol('/api/bridge/session/x/ws/extra')).toBe(false);
    expect(authenticatesInProtocol('/ws/assistant/demo-app/c/u')).toBe(false);
  });
});
