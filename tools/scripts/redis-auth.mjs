// The Redis of REDIS_URL as tools/scripts/lib.sh needs to know it. The URL (and so its password)
// is read from the environment, never from the command line, where `ps` would show it.
//
//   node tools/scripts/redis-auth.mjs state          prints down | open | ok | refused
//   node tools/scripts/redis-auth.mjs set-password   CONFIG SET requirepass <the URL's password>
//   node tools/scripts/redis-auth.mjs set-fsync always|everysec   CONFIG SET appendfsync, live
//
// state: down = nothing answers (or not a Redis ready to serve); open = PING answers without any
// password; ok = PING answers NOAUTH, AUTH with the URL's password is accepted, PING answers PONG;
// refused = a password is required and the URL's is missing or wrong.
// set-password: on a Redis that asks for no password; exit status 0 once it requires the URL's.
// A redis+cluster:// or redis+sentinel:// URL (several host:port, comma-separated, which `new URL`
// refuses) is asked at each of its servers in turn: state is the first one's that answers.
import net from 'node:net';

const raw = process.env.REDIS_URL ?? '';
const multi = /^rediss?\+(cluster|sentinel):\/\/(?:([^/?#]*)@)?([^/?#]*)/.exec(raw);
let user, pass, servers;
if (multi) {
  const [, kind, userinfo = '', hosts] = multi;
  const i = userinfo.indexOf(':');
  user = decodeURIComponent(i < 0 ? userinfo : userinfo.slice(0, i));
  pass = decodeURIComponent(i < 0 ? '' : userinfo.slice(i + 1));
  servers = hosts
    .split(',')
    .filter(Boolean)
    .map((h) => {
      const [, v6, name, port] = /^(?:\[(.*)\]|([^:]*))(?::(\d+))?$/.exec(h) ?? [];
      return { host: v6 ?? name ?? h, port: Number(port || (kind === 'sentinel' ? 26379 : 6379)) };
    });
} else {
  const url = new URL(raw);
  user = decodeURIComponent(url.username);
  pass = decodeURIComponent(url.password);
  servers = [{ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) }];
}

/** A RESP array of bulk strings: any byte of a password goes through as is. */
const encode = (args) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/** One connection; send() resolves with the next reply line (every reply used here is one line), null once closed. */
function connect({ host, port } = servers[0]) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const lines = [];
    const waiters = [];
    let buf = '';
    let closed = false;
    s.setTimeout(1500, () => s.destroy());
    s.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const w = waiters.shift();
        if (w) w(line);
        else lines.push(line);
      }
    });
    s.on('close', () => {
      closed = true;
      for (const w of waiters.splice(0)) w(null);
      resolve(null);
    });
    s.on('error', () => s.destroy());
    s.on('connect', () =>
      resolve({
        send: (...args) => {
          s.write(encode(args));
          return new Promise((r) => (lines.length ? r(lines.shift()) : closed ? r(null) : waiters.push(r)));
        },
      }),
    );
  });
}

async function state() {
  for (const server of servers) {
    const st = await stateOf(server);
    if (st !== 'down') return st;
  }
  return 'down';
}

async function stateOf(server) {
  const c = await connect(server);
  if (!c) return 'down';
  const pong = await c.send('PING');
  if (pong === '+PONG') return 'open';
  if (!pong?.startsWith('-NOAUTH')) return 'down';
  if (!pass) return 'refused';
  if ((await c.send('AUTH', ...(user ? [user, pass] : [pass]))) !== '+OK') return 'refused';
  return (await c.send('PING')) === '+PONG' ? 'ok' : 'refused';
}

async function setPassword() {
  if (!pass || multi) return false;
  const c = await connect();
  return !!c && (await c.send('CONFIG', 'SET', 'requirepass', pass)) === '+OK';
}

/** appendfsync on the running Redis (one server), authenticated with the URL's password when it has one. */
async function setFsync(value) {
  if (multi || !['always', 'everysec'].includes(value)) return false;
  const c = await connect();
  if (!c) return false;
  if (pass && (await c.send('AUTH', ...(user ? [user, pass] : [pass]))) !== '+OK') return false;
  return (await c.send('CONFIG', 'SET', 'appendfsync', value)) === '+OK';
}

const what = process.argv[2];
if (what === 'state') {
  console.log(await state());
  process.exit(0);
} else if (what === 'set-password') {
  process.exit((await setPassword()) ? 0 : 1);
} else if (what === 'set-fsync') {
  process.exit((await setFsync(process.argv[3])) ? 0 : 1);
} else {
  console.error('usage: node redis-auth.mjs state|set-password|set-fsync always|everysec (REDIS_URL in the environment)');
  process.exit(2);
}
