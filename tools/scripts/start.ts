/**
 * `npm start`: runs every service of the platform on this machine (start.sh prepares the infra,
 * then execs this), prints the URLs and a development token. SIGINT, SIGTERM or SIGHUP (Ctrl-C,
 * a process manager, `kill`), or the end of the npm process that ran it, stops every service
 * with whatever it started, waits until they are gone, then exits. Redis and PostgreSQL are left
 * running: another command (`npm test`) may be using them.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { seedAgents } from './seed-agents';
import { DEMO_PRICE_OVERRIDES, SERVICES, type ServiceProcess } from './services';

const root = resolve(__dirname, '../..');
const colors = [36, 35, 33, 32, 34, 31, 96, 95];
// A service's own graceful shutdown is bounded by SHUTDOWN_TIMEOUT_MS; past that and a margin, it is killed.
const KILL_AFTER_MS = (Number(process.env.SHUTDOWN_TIMEOUT_MS) || 10_000) + 2_000;

interface Running {
  svc: ServiceProcess;
  proc: ChildProcess;
  exited: Promise<void>;
}
const running: Running[] = [];
let stopping = false;

const say = (msg: string) => process.stderr.write(`[tessera] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prefixLines(name: string, color: number, chunk: Buffer, out: NodeJS.WriteStream) {
  for (const line of chunk.toString().split('\n')) if (line) out.write(`\x1b[${color}m${name.padEnd(16)}\x1b[0m ${line}\n`);
}

function portOf(s: ServiceProcess): number {
  const raw = s.portVar ? process.env[s.portVar] : undefined;
  const port = raw ? Number(raw) : s.port!;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    say(`${s.portVar}=${raw} is not a port`);
    process.exit(1);
  }
  return port;
}
const ports = Object.fromEntries(SERVICES.filter((s) => s.port).map((s) => [s.name, portOf(s)]));
/** demo-app's development ingest key (start.sh, .data/secrets/demo-app.ingest-key); unset when INGEST_KEYS is the user's. */
const devIngestKey = process.env.TESSERA_DEV_INGEST_KEY;

function envFor(s: ServiceProcess): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.TESSERA_INFRA_NOTE;
  delete env.TESSERA_DEV_INGEST_KEY;
  if (s.port) env.PORT = String(ports[s.name]);
  // The console is opened at the gateway's port: its origin is allowed when the gateway moved too.
  if (!env.CORS_ORIGINS && ports.gateway !== 8080)
    env.CORS_ORIGINS = ['http://localhost:3000', 'http://localhost:5173', `http://localhost:${ports.gateway}`, 'http://127.0.0.1:3000', 'http://127.0.0.1:5173', `http://127.0.0.1:${ports.gateway}`].join(',');
  const runtimeUrl = `http://127.0.0.1:${ports.runtime}`;
  const agentsUrl = `http://127.0.0.1:${ports['agent-manager']}`;
  const documentsUrl = `http://127.0.0.1:${ports['document-server']}`;
  if (s.app === 'runtime') {
    env.AGENTS_URL ||= agentsUrl;
    // Chat attachments go to the document server (the runtime's own default keeps them in PostgreSQL).
    env.DOCUMENTS_URL ||= documentsUrl;
  }
  if (s.app === 'bridge') {
    env.OBSERVABILITY_URL ||= `http://127.0.0.1:${ports.observability}`;
    // Session sockets as clients reach them: through the gateway (/api/bridge/* → the bridge's /api/*).
    env.BACKEND_BRIDGE_PUBLIC_URL ||= `http://localhost:${ports.gateway}/api/bridge`;
    // A session belongs to the app and user of the token that bootstraps it (the development token
    // below: demo-app, dev-user), and its events reach observability under them.
  }
  // Outside agents and OpenTelemetry exporters of demo-app post through the gateway with this key.
  if (s.app === 'observability' && devIngestKey && !env.INGEST_KEYS) env.INGEST_KEYS = `demo-app:${devIngestKey}`;
  // A demo price for the scripted model (gpt-4o-mini's list price, USD per million tokens), so that a
  // fresh clone's chats have a cost; PRICE_OVERRIDES set by the user replaces it. One price list
  // for the costs observability shows and the cost budgets the runtime enforces.
  if ((s.app === 'observability' || s.app === 'runtime') && env.PRICE_OVERRIDES === undefined) env.PRICE_OVERRIDES = JSON.stringify(DEMO_PRICE_OVERRIDES);
  if (s.app === 'agent-manager') {
    env.RUNTIME_URL ||= runtimeUrl;
    env.OBSERVABILITY_URL ||= `http://127.0.0.1:${ports.observability}`;
    // The blueprints of this checkout (the command-line tools read the same folder).
    env.AGENT_MANAGER_PROJECT_DIR ||= resolve(root, '.data/agents');
  }
  if (s.app === 'broker') {
    env.RUNTIME_URL ||= runtimeUrl;
    env.PUBLIC_WS_URL ||= `ws://localhost:${ports.gateway}`;
    // Development stand-in for the host application's user context (document 000 §3).
    env.CONTEXT_FILE ||= resolve(__dirname, 'dev-context.json');
  }
  if (s.app === 'gateway') {
    env.RUNTIME_URL ||= runtimeUrl;
    env.BROKER_URL ||= `http://127.0.0.1:${ports.broker}`;
    env.OBSERVABILITY_URL ||= `http://127.0.0.1:${ports.observability}`;
    env.AGENTS_URL ||= agentsUrl;
    env.DOCUMENTS_URL ||= documentsUrl;
    env.BRIDGE_URL ||= `http://127.0.0.1:${ports.bridge}`;
  }
  return env;
}

/**
 * Each service runs in a process group of its own (spawned detached), so that one signal reaches
 * it and everything it started (tsx's esbuild, say), and a terminal's Ctrl-C reaches only this
 * process, which then stops the services in order.
 */
function signalGroup(r: Running, sig: NodeJS.Signals) {
  try {
    process.kill(-r.proc.pid!, sig);
  } catch {
    /* the group is gone */
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stopAll(code: number, why: string) {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping services...`);
  for (const r of running) signalGroup(r, 'SIGTERM');
  const kill = setTimeout(() => {
    say(`still running after ${KILL_AFTER_MS} ms: killing`);
    for (const r of running) signalGroup(r, 'SIGKILL');
  }, KILL_AFTER_MS);
  await Promise.all(
    running.map(async (r) => {
      await r.exited;
      while (groupAlive(r.proc.pid!)) await sleep(50);
    }),
  );
  clearTimeout(kill);
  say(`services stopped.${process.env.TESSERA_INFRA_NOTE ? ' ' + process.env.TESSERA_INFRA_NOTE : ''}`);
  process.exit(code);
}

/** Parent of a process, undefined once it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    if (process.platform === 'linux') {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    }
    return Number(execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8' }).trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stop when the npm process that ran `npm start` is gone, however it ended: npm runs this
 * through `sh -c`, which dies on the SIGTERM npm passes on without passing it further, and npm
 * passes on only SIGINT and SIGTERM (SIGHUP or SIGKILL end npm alone). Either way a process
 * between npm and this one gets a new parent. Run without npm, signals reach this process itself.
 */
function watchLaunchers() {
  if (!process.env.npm_lifecycle_event) return;
  const links = [{ pid: process.pid, parent: process.ppid }];
  const comm = execFileSync('ps', ['-o', 'comm=', '-p', String(process.ppid)], { encoding: 'utf8' }).trim();
  if (/^(sh|dash|bash|zsh)$/.test(comm)) links.push({ pid: process.ppid, parent: parentOf(process.ppid)! });
  setInterval(() => {
    if (links.some((l) => parentOf(l.pid) !== l.parent)) void stopAll(0, 'npm start ended');
  }, 500).unref();
}

async function waitHealthy(port: number, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !stopping) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return true;
    } catch {
      /* not yet */
    }
    await sleep(200);
  }
  return false;
}

async function main() {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stopAll(0, sig));
  watchLaunchers();
  SERVICES.forEach((svc, i) => {
    // Node with tsx's loader, not the tsx CLI, whose wrapper process would stand between the signal and the service.
    const proc = spawn(process.execPath, ['--import', 'tsx', svc.entry], { cwd: root, env: envFor(svc), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const color = colors[i % colors.length];
    proc.stdout!.on('data', (d) => prefixLines(svc.name, color, d, process.stdout));
    proc.stderr!.on('data', (d) => prefixLines(svc.name, color, d, process.stderr));
    const exited = new Promise<void>((r) => {
      proc.once('exit', (code, signal) => {
        r();
        if (!stopping) void stopAll(1, `${svc.name} exited (${signal ?? code})`);
      });
      proc.once('error', (err) => {
        r();
        void stopAll(1, `${svc.name} did not start (${err.message})`);
      });
    });
    running.push({ svc, proc, exited });
  });

  const listening = SERVICES.filter((s) => s.port);
  const ok = await Promise.all(listening.map((s) => waitHealthy(ports[s.name])));
  if (stopping) return;
  const bad = listening.filter((_, i) => !ok[i]).map((s) => s.name);
  if (bad.length) return stopAll(1, `not healthy after 30 s: ${bad.join(', ')}`);
  // Also an operator (the role claim observability's reads, stop and live socket need), so that one token tries everything.
  const token = await signToken(
    process.env.JWT_SECRET || DEV_JWT_SECRET,
    { sub: 'dev-user', apps: ['demo-app'], name: 'Developer', tier: 'pro', permissions: ['read', 'write'], roles: ['operator'] },
    { expiresIn: '12h' },
  );
  // The blueprint the example workflow support_desk runs on, in the development token's app (an operator's change stands).
  const seeded = await seedAgents({ agentsUrl: `http://127.0.0.1:${ports['agent-manager']}`, token, app: 'demo-app' }).catch((e: Error) => {
    say(`example agents not seeded: ${e.message}`);
    return null;
  });
  if (seeded?.created.length) say(`example agents created in demo-app: ${seeded.created.join(', ')}`);
  const api = `http://localhost:${ports.gateway}`;
  const lines = [
    '',
    'Tessera is running.',
    ...listening.map((s) => `  ${s.name.padEnd(16)} http://localhost:${ports[s.name]}`),
    '',
    `  API (everything goes through the gateway): ${api}  (OpenAPI: /openapi.json)`,
    `  Console: ${api}/console/  (sign in with the token below)`,
    '',
    '  Development token (user dev-user, app demo-app, tier pro, operator, valid 12 h):',
    `  export TOKEN=${token}`,
    '',
    ...(devIngestKey
      ? [
          '  Development ingest key (app demo-app; outside agents and OpenTelemetry exporters send it as x-ingest-key; kept in .data/secrets/demo-app.ingest-key):',
          `  export INGEST_KEY=${devIngestKey}`,
          '  curl -X POST -H "x-ingest-key: $INGEST_KEY" -H "Content-Type: application/json" \\',
          `       -d '{"event_type":"session_start","session_id":"my-agent-1","session_name":"first"}' ${api}/api/observability/events`,
          `  OpenTelemetry: OTEL_EXPORTER_OTLP_ENDPOINT=${api}/api/observability OTEL_EXPORTER_OTLP_HEADERS=x-ingest-key=$INGEST_KEY`,
        ]
      : ['  Ingest keys: INGEST_KEYS as you set it (no development key was made).']),
    '',
    '  Chat from a second terminal: npm run chat -- assistant    (ask_user, greeter, handoff; --help)',
    '',
    `  curl ${api}/api/workflows`,
    '  curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
    `       -d '{"workflow_name":"assistant"}' ${api}/api/mozaiks/session`,
    '  then open the returned websocket_url with ?access_token=$TOKEN and send {"type":"user.input.submit","text":"hi"}',
    `  curl -H "Authorization: Bearer $TOKEN" ${api}/api/chats/demo-app/agents    # the app's active agents; chat with one: "workflow_name":"agent.support-agent"`,
    `  curl -H "Authorization: Bearer $TOKEN" ${api}/api/observability/sessions    # every session, as an operator sees it`,
    `  curl -H "Authorization: Bearer $TOKEN" "${api}/api/observability/usage?group_by=workflow,model"    # tokens and cost per day`,
    '  curl -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\',
    `       -d '{"scadaUrl":"https://scada.example.com","accessToken":"<the SCADA token>"}' ${api}/api/bridge/session/bootstrap    # an agent server of dev-user's (demo-app)`,
    `  Mission Ally (document 002): ws://localhost:${ports.gateway}/api/v1/mission-ally/ws?mission_id=p3BpROIATqthZT3ckEzd&token=$TOKEN`,
    '',
    '  Ctrl-C stops the services.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  say(`npm start failed: ${err instanceof Error ? err.stack : String(err)}`);
  void stopAll(1, 'error');
});
