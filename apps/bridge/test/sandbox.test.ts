/**
 * What an agent server can reach, tried from a shell inside one, as the attack of issue 16 did:
 * the bridge runs as deployed (its own process, with the platform's secrets in its environment),
 * and commands run where the agent server runs, through the stand-in's /exec and through the real
 * `opencode serve`'s PTY API. Reading the bridge's environment, the platform's files and secrets,
 * and Redis or PostgreSQL without their passwords all fail; the agent's own workspace works.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { TEST_DATABASE_URL, TEST_REDIS_URL, testPrefix } from '@tessera/kit/testing';
import { bootstrap, forget, ROOT, spawnBridge, STAND_IN, tokenOf, until } from './harness';

const BASE = 31500;
const prefix = testPrefix('bridge-sandbox');
const CANARY = `deployment-secret-${Math.random().toString(36).slice(2)}`;
const JWT_SECRET = `jwt-secret-of-this-test-${Math.random().toString(36).slice(2)}-0123456789`;
const redisUrl = new URL(TEST_REDIS_URL);
const pgUrl = new URL(TEST_DATABASE_URL);
/** Every secret the bridge's environment holds: none may be readable from inside. */
const SECRETS = [CANARY, JWT_SECRET, 'test-service-key-0123456789', redisUrl.password, pgUrl.password].filter((s) => s.length >= 8);
const PSQL = readdirSync('/usr/lib/postgresql')
  .map((v) => `/usr/lib/postgresql/${v}/bin/psql`)
  .find((p) => existsSync(p));
const agentUid = (() => {
  try {
    return Number(execFileSync('id', ['-u', 'tessera-agent']).toString().trim());
  } catch {
    return null;
  }
})();

type Bridge = Awaited<ReturnType<typeof spawnBridge>>;
let bridge: Bridge;
let session: { opencodeUrl: string; opencodeAuth: { username: string; password: string }; sessionId: string };
let other: { sessionId: string };

const basic = (a: { username: string; password: string }) => `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;

/** A command run where the stand-in agent server runs (inside the sandbox). */
async function sh(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await fetch(`${session.opencodeUrl}/exec`, { method: 'POST', headers: { authorization: basic(session.opencodeAuth) }, body: JSON.stringify({ command }) });
  expect(r.status).toBe(200);
  return (await r.json()) as { code: number; stdout: string; stderr: string };
}

beforeAll(async () => {
  // As deployed: its own process, whose environment holds what a deployment sets.
  bridge = await spawnBridge(prefix, BASE, { ...STAND_IN, JWT_SECRET, SOME_DEPLOYMENT_SECRET: CANARY, OPENAI_API_KEY: 'sk-for-the-agents' });
  const r = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?key=url-secret', accessToken: 'Bearer alice-scada-token' }, { token: await tokenOf('alice', { secret: JWT_SECRET }) });
  expect(r.status).toBe(200);
  session = r.body;
  const o = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/', accessToken: 'Bearer bob-scada-token' }, { token: await tokenOf('bob', { secret: JWT_SECRET }) });
  expect(o.status).toBe(200);
  other = o.body;
});
afterAll(async () => {
  await bridge?.stop('SIGTERM');
  await forget(prefix);
});

describe('inside an agent server', () => {
  it('runs as an unprivileged user of its own, not as root nor as the bridge', async () => {
    const id = await sh('id -u');
    const uid = Number(id.stdout.trim());
    expect(uid).not.toBe(0);
    if (process.getuid?.() === 0) {
      expect(agentUid).not.toBeNull();
      expect(uid).toBe(agentUid);
    }
  });

  it("cannot read the bridge's environment, nor any secret the platform holds, from /proc", async () => {
    const bridgeEnviron = await sh(`cat /proc/${bridge.child.pid}/environ`);
    expect(bridgeEnviron.code).not.toBe(0);
    expect(bridgeEnviron.stderr).toMatch(/No such file/);
    // Its own PID namespace: a handful of its own processes, not the host's.
    const pids = (await sh('ls /proc')).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p));
    expect(pids.length).toBeLessThan(10);
    // pid 1 is the sandbox's own init, whose environment is the agent server's: no platform secret.
    const init = await sh('cat /proc/1/environ | tr "\\0" "\\n"; cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n"');
    expect(init.stdout).toContain('OPENCODE_SERVER_PASSWORD=');
    expect(init.stdout).toContain('OPENAI_API_KEY=sk-for-the-agents');
    for (const secret of SECRETS) expect(init.stdout).not.toContain(secret);
    expect(init.stdout).not.toMatch(/REDIS_URL|DATABASE_URL|JWT_SECRET|SERVICE_KEY/);
    // What the shell itself inherits.
    const env = await sh('env');
    for (const secret of SECRETS) expect(env.stdout).not.toContain(secret);
  });

  it("sees none of the platform's files: the checkout, .data/ (the passwords), /root, the database sockets, /etc/shadow", async () => {
    for (const path of [ROOT, `${ROOT}/.data/secrets/redis.password`, `${ROOT}/.data/secrets/postgres.password`, `${ROOT}/.data`, '/root', '/var/run/postgresql', '/var/lib/postgresql', '/etc/shadow', '/etc/postgresql']) {
      const r = await sh(`ls -la ${path} || cat ${path}`);
      expect([path, r.code]).not.toEqual([path, 0]);
    }
    const found = await sh(`grep -rls -- '${CANARY}' /etc /tmp /home /workspace /dev/shm /proc/1/environ 2>/dev/null | head -3; true`);
    expect(found.stdout.trim()).toBe('');
    // The system is read-only to it.
    expect((await sh('touch /usr/bin/x')).code).not.toBe(0);
  });

  it("does not see another session's workspace", async () => {
    const listing = await sh('ls / /tmp; ls -d /tmp/*/ 2>/dev/null; true');
    expect(listing.stdout).not.toContain(other.sessionId);
    expect(listing.stdout).not.toContain(session.sessionId);
  });

  it('is refused by Redis without the password (NOAUTH), and by PostgreSQL with the default credentials or none', async () => {
    expect(redisUrl.password).not.toBe('');
    const ping = await sh(`redis-cli -h ${redisUrl.hostname} -p ${redisUrl.port || 6379} ping 2>&1`);
    expect(ping.stdout).toMatch(/NOAUTH|Connection refused/);
    const keys = await sh(`redis-cli -h ${redisUrl.hostname} -p ${redisUrl.port || 6379} --no-auth-warning -a tessera keys '*' 2>&1`);
    expect(keys.stdout).toMatch(/WRONGPASS|NOAUTH|invalid|Connection refused/i);
    expect(PSQL).toBeDefined();
    const port = pgUrl.port || '5432';
    for (const login of [`postgresql://tessera:tessera@${pgUrl.hostname}:${port}/tessera`, `postgresql://postgres@${pgUrl.hostname}:${port}/postgres`, `postgresql://tessera@${pgUrl.hostname}:${port}/tessera`]) {
      const r = await sh(`PGCONNECT_TIMEOUT=3 ${PSQL} -w '${login}' -c 'select 1' 2>&1`);
      expect([login, r.code]).not.toEqual([login, 0]);
      expect(r.stdout).toMatch(/password authentication failed|no password supplied|Connection refused/);
    }
  });

  it('works in its own workspace (read, write, run), which is its working directory', async () => {
    const r = await sh('pwd; echo hello > notes.txt && cat notes.txt && mkdir -p src && echo "echo ran" > src/x.sh && sh src/x.sh && ls');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual(['/workspace', 'hello', 'ran', 'notes.txt', 'src', '']);
    // A file it made is its own (the bridge removes the workspace with the server).
    const owner = await sh('stat -c %u notes.txt; id -u');
    const [fileUid, uid] = owner.stdout.trim().split('\n');
    expect(fileUid).toBe(uid);
  });
});

describe('a bridge whose sandbox cannot work', () => {
  it('refuses to start, naming the reason, when its user cannot reach OPENCODE_WORK_ROOT', async () => {
    if (process.getuid?.() !== 0) return; // only root gives agent servers a user of their own
    const closed = mkdtempSync(join(tmpdir(), 'bridge-closed-'));
    chmodSync(closed, 0o700);
    try {
      const failed = spawnBridge(`${prefix}-closed`, BASE + 60, { ...STAND_IN, OPENCODE_WORK_ROOT: join(closed, 'work') });
      await expect(failed).rejects.toThrow(/cannot start an agent server's sandbox in .*bridge-closed-.*must be able to enter every folder above OPENCODE_WORK_ROOT/s);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});

describe('the real opencode serve', () => {
  it("its PTY API (the attack's way in) runs as the sandbox's user and reaches neither the bridge's environment nor Redis", async () => {
    const real = await spawnBridge(`${prefix}-real`, BASE + 30, { JWT_SECRET, SOME_DEPLOYMENT_SECRET: CANARY });
    try {
      const r = await bootstrap(real.url, { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer real-token' }, { token: await tokenOf('alice', { secret: JWT_SECRET }) });
      expect(r.status).toBe(200);
      const out = await pty(r.body.opencodeUrl, r.body.opencodeAuth, `id -u; cat /proc/${real.child.pid}/environ; cat ${ROOT}/.data/secrets/redis.password; redis-cli -h ${redisUrl.hostname} -p ${redisUrl.port || 6379} ping`);
      const uid = Number(/^\s*(\d+)\s*$/m.exec(out)?.[1]);
      expect(uid).not.toBe(0);
      if (process.getuid?.() === 0) expect(uid).toBe(agentUid);
      expect(out).toMatch(/No such file/);
      expect(out).toMatch(/NOAUTH|Connection refused/);
      for (const secret of SECRETS) expect(out).not.toContain(secret);
    } finally {
      await real.stop('SIGTERM');
    }
  });
});

/**
 * OpenCode's PTY API: create a terminal running `command`, read what it prints over its socket until
 * it is done. The terminal stays open well past the command (a socket can attach only while it runs,
 * and on a loaded machine attaching has taken seconds); it is removed at the end.
 */
async function pty(url: string, auth: { username: string; password: string }, command: string): Promise<string> {
  const created = await fetch(`${url}/pty`, { method: 'POST', headers: { authorization: basic(auth), 'content-type': 'application/json' }, body: JSON.stringify({ command: '/bin/sh', args: ['-c', `${command}; echo END-OF-COMMAND; sleep 120`] }) });
  expect(created.status).toBe(200);
  const { id } = (await created.json()) as { id: string };
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/pty/${id}/connect`, { headers: { authorization: basic(auth) } });
  let out = '';
  let ended = '';
  // The first message is the terminal's cursor (a NUL, then {"cursor":0}); the rest is what it printed.
  ws.on('message', (d) => {
    const text = d.toString();
    if (!/^\0?\{"cursor":\d+\}$/.test(text)) out += text;
  });
  ws.on('error', (err) => {
    ended ||= `socket error: ${err.message}`;
  });
  ws.on('close', (code, reason) => {
    ended ||= `socket closed: ${code} ${reason.toString()}`;
  });
  try {
    await until(() => out.includes('END-OF-COMMAND') || ended, 30_000, 'the command to finish in the terminal').catch((err: Error) => {
      throw new Error(`${err.message}; it printed: ${JSON.stringify(out)}`);
    });
    if (!out.includes('END-OF-COMMAND')) throw new Error(`the terminal ended before the command did (${ended}); it printed: ${JSON.stringify(out)}`);
  } finally {
    ws.terminate();
    await fetch(`${url}/pty/${id}`, { method: 'DELETE', headers: { authorization: basic(auth) } });
  }
  return out;
}
