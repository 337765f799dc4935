import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '@tessera/kit/testing';
import { startTestGateway, type TestGateway } from './support';

/** A console build as Vite writes it: index.html and hashed assets. */
function fakeBuild(): string {
  const dist = mkdtempSync(join(tmpdir(), 'tessera-console-'));
  mkdirSync(join(dist, 'assets'));
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>Tessera console</title><script type="module" src="/console/assets/index-abc123.js"></script>');
  writeFileSync(join(dist, 'assets/index-abc123.js'), 'console.log("console")');
  writeFileSync(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  return dist;
}

describe('gateway /console', () => {
  let dist: string;
  let gw: TestGateway;
  let bare: TestGateway;

  beforeAll(async () => {
    dist = fakeBuild();
    [gw, bare] = await Promise.all([
      startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off', CONSOLE_DIST: dist }),
      startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off', CONSOLE_DIST: join(dist, 'missing') }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([gw.stop(), bare.stop()]);
    rmSync(dist, { recursive: true, force: true });
  });

  it('serves index.html at /console/ and for every page of the single-page app, with a CSP that lets it run', async () => {
    for (const path of ['/console/', '/console/sessions', '/console/agents/reviewer/edit?tab=prompt']) {
      const r = await call(gw.url, 'GET', path);
      expect({ path, status: r.status }).toEqual({ path, status: 200 });
      expect(r.headers['content-type']).toMatch(/text\/html/);
      expect(r.text).toContain('<title>Tessera console</title>');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toContain("script-src 'self'");
      expect(r.headers['content-security-policy']).toContain("connect-src 'self'");
    }
  });

  it('redirects /console to /console/ (relative URLs need the slash)', async () => {
    const r = await call(gw.url, 'GET', '/console?x=1');
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe('/console/?x=1');
  });

  it('serves hashed assets for good and files as they are; a missing file is a 404, not the page', async () => {
    const js = await call(gw.url, 'GET', '/console/assets/index-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toMatch(/immutable/);
    expect((await call(gw.url, 'GET', '/console/favicon.svg')).status).toBe(200);
    const missing = await call(gw.url, 'GET', '/console/assets/gone-123.js');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBeDefined();
  });

  it('refuses dot segments and leaves the API paths alone', async () => {
    expect((await call(gw.url, 'GET', '/console/../package.json')).status).toBe(400);
    expect((await call(gw.url, 'GET', '/console/%2e%2e/package.json')).status).toBe(400);
    // Not a console path: the gateway's own 404 in the error shape.
    const r = await call(gw.url, 'GET', '/consoles');
    expect(r.status).toBe(404);
    expect(r.json.error).toBeDefined();
  });

  it('answers 503 with how to build it when the console was not built', async () => {
    const r = await call(bare.url, 'GET', '/console/sessions');
    expect(r.status).toBe(503);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    expect(r.text).toContain('Console not built');
    expect(r.text).toContain('npm run build -w apps/console');
    // The gateway's API is not affected.
    expect((await call(bare.url, 'GET', '/health')).status).toBe(200);
  });
});
