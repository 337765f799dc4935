/**
 * Every call the console makes goes to the gateway's origin (which also serves the console) with
 * the operator's token as `Authorization: Bearer`. A refusal becomes an ApiError whose message is
 * the service's own words (the kit's `{"error":{"code","message","details"}}`).
 */
const TOKEN_KEY = 'tessera.console.token';
/** The app the operator chose, when the token allows several: the tab's too, like the token. */
const APP_KEY = 'tessera.console.app';

/**
 * The operator's token lives in the tab's sessionStorage: it survives a reload of the tab, is
 * gone when the tab closes, and no other tab sees it (each signs in on its own). A token left in
 * localStorage by an older console is removed, not used. Script in the page could still read it
 * (the strict CSP is what keeps foreign script out); what this narrows is how long and where a
 * bearer token sits on the operator's machine.
 */
export function storedToken(): string | null {
  forgetLegacyToken();
  return sessionStorage.getItem(TOKEN_KEY);
}
export function storeToken(token: string | null): void {
  forgetLegacyToken();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}
export function storedApp(): string | null {
  return sessionStorage.getItem(APP_KEY);
}
export function storeApp(app: string | null): void {
  if (app) sessionStorage.setItem(APP_KEY, app);
  else sessionStorage.removeItem(APP_KEY);
}
function forgetLegacyToken(): void {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused (private mode): nothing was kept there */
  }
}

export interface Claims {
  sub: string;
  apps: string[] | null;
  roles: string[];
  exp: number | null;
}

/** What the token says about its holder (read, not verified: the gateway verifies it). */
export function claimsOf(token: string): Claims | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=')));
    const apps = Array.isArray(json.apps) ? json.apps.map(String) : typeof json.apps === 'string' ? json.apps.split(' ') : null;
    return { sub: String(json.sub ?? ''), apps, roles: Array.isArray(json.roles) ? json.roles.map(String) : [], exp: typeof json.exp === 'number' ? json.exp : null };
  } catch {
    return null;
  }
}

/**
 * The token in what an operator pasted: the JWT itself, or the line `npm start` prints
 * (`export TOKEN=eyJ…`), a `TOKEN=…` assignment, a quoted value or an `Authorization: Bearer …`
 * header; whitespace and line breaks of a wrapped terminal line are dropped.
 */
export function pastedToken(text: string): string {
  let t = text.replace(/\s+/g, ' ').trim();
  t = t.replace(/^(export\s+)?[A-Za-z_][A-Za-z0-9_]*=/, '').replace(/^authorization:\s*/i, '').replace(/^bearer\s+/i, '');
  t = t.replace(/^(["'])(.*)\1;?$/, '$2').replace(/;$/, '');
  return t.replace(/\s+/g, '');
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** Called when the gateway refuses the token (401): the app signs out and says why. */
let onUnauthorized: (message: string) => void = () => undefined;
export function setUnauthorizedHandler(f: (message: string) => void): void {
  onUnauthorized = f;
}

/** The error of a reply in words: the service's message, else the status. */
export async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body?.error?.message) return new ApiError(res.status, String(body.error.code ?? res.status), String(body.error.message), body.error.details);
  } catch {
    // not JSON: a proxy's page, or nothing
  }
  const words = res.status === 502 || res.status === 503 || res.status === 504 ? 'the service is not reachable' : res.statusText || 'request failed';
  return new ApiError(res.status, String(res.status), `${res.status}: ${words}`);
}

export function authHeaders(): Record<string, string> {
  const token = storedToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/**
 * The header that names the app a call acts in, for a token that allows several (the agent
 * manager's `x-tessera-app`, contracts' `agents.AGENT_APP_HEADER`: spelled here so that the bundle
 * takes no zod for it). None when the app is the token's only one: the service infers it.
 */
export function appHeaders(app: string | null): Record<string, string> {
  return app ? { 'x-tessera-app': app } : {};
}

export async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { ...authHeaders(), ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the gateway is not reachable (network error)');
  }
  if (res.ok) return res;
  const err = await errorOf(res);
  if (res.status === 401) onUnauthorized(err.message);
  throw err;
}

export async function api<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
  const res = await request(method, path, body, headers);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string, headers?: Record<string, string>) => api<T>('GET', path, undefined, headers);

/** Query string of the given values, leaving out empty ones. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function wsUrl(path: string): string {
  const u = new URL(path, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = storedToken();
  if (token) u.searchParams.set('access_token', token);
  return u.toString();
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
