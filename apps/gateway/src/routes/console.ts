import { existsSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import express, { type Router } from 'express';

/**
 * The operator console (apps/console, a Vite build) at `/console`. Hashed assets are cached for
 * good; any other path under /console is the single page's index.html (the console routes in the
 * browser), except a path that names a file, which is a plain 404. When the console was not built,
 * every /console path answers 503 with a page that says how to build it.
 *
 * The gateway's CSP (`default-src 'none'`, right for an API) would block the page's own scripts:
 * console responses get one that allows the same origin only (fetch and WebSocket included).
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  // CodeMirror sets styles at run time.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

const NOT_BUILT = (dist: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tessera console: not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>Console not built</h1>
<p>The gateway serves the operator console from <code>${escapeHtml(dist)}</code>, which has no <code>index.html</code>.</p>
<p>Build it, then reload this page: <code>npm run build -w apps/console</code> (or <code>npx nx run console:build</code>).</p>
</body></html>
`;

export function consoleRoutes(opts: { dist: string }): Router {
  const dist = resolve(opts.dist);
  const index = join(dist, 'index.html');
  const r = express.Router();
  r.use('/console', (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    if (!existsSync(index)) {
      res.status(503).setHeader('Cache-Control', 'no-store');
      return void res.type('html').send(NOT_BUILT(dist));
    }
    // `/console` itself: relative asset URLs need the trailing slash.
    if (req.originalUrl === '/console' || req.originalUrl.startsWith('/console?')) return res.redirect(301, '/console/' + req.originalUrl.slice('/console'.length));
    next();
  });
  r.use('/console/assets', express.static(join(dist, 'assets'), { immutable: true, maxAge: '365d', index: false, fallthrough: true }));
  r.use('/console', express.static(dist, { index: false, maxAge: 0, fallthrough: true }));
  r.get('/console/{*rest}', (req, res, next) => {
    // A missing file is a 404; everything else is a page of the single-page app.
    if (extname(req.path) !== '') return next();
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(index, (err) => err && next(err));
  });
  return r;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
