import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BaseEnv, loadConfig } from '@tessera/kit';
import { SERVICES } from '../services';

/**
 * .env.example is where an operator learns what can be set: every variable that a service's
 * config reads is listed there (set, or as `# NAME=` when it must differ per service), its values
 * are the defaults, and it names nothing that no service reads.
 */
const ROOT = resolve(__dirname, '../../..');

function readExample() {
  const values: Record<string, string> = {};
  const listed = new Set<string>();
  for (const line of readFileSync(resolve(ROOT, '.env.example'), 'utf8').split('\n')) {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    listed.add(m[2]);
    if (!m[1]) values[m[2]] = m[3];
  }
  return { values, listed };
}

/** Each service's env schema: the `…Env` zod objects its config.ts exports, found on disk so a new service is covered. */
async function serviceSchemas(): Promise<[string, z.ZodObject][]> {
  const found: [string, z.ZodObject][] = [['kit BaseEnv', BaseEnv]];
  for (const app of readdirSync(resolve(ROOT, 'apps'))) {
    const file = resolve(ROOT, 'apps', app, 'src/config.ts');
    if (!existsSync(file)) continue;
    const mod: Record<string, unknown> = await import(file);
    for (const [name, v] of Object.entries(mod)) if (name.endsWith('Env') && v instanceof z.ZodObject) found.push([`${app} ${name}`, v]);
  }
  return found;
}

/** Per schema, what `pick` returns when it is not empty. */
const each = (schemas: [string, z.ZodObject][], pick: (s: z.ZodObject) => string[]) =>
  Object.fromEntries(schemas.map(([n, s]) => [n, pick(s)]).filter(([, v]) => v.length));

describe('.env.example', () => {
  const { values, listed } = readExample();
  let schemas: [string, z.ZodObject][];

  beforeAll(async () => {
    schemas = await serviceSchemas();
  });

  it('finds the config of every service', () => {
    expect(schemas.map(([n]) => n)).toEqual(expect.arrayContaining(['kit BaseEnv', 'gateway GatewayEnv', 'runtime RuntimeEnv', 'broker BrokerEnv']));
  });

  it('lists every variable of every config', () => {
    expect(each(schemas, (s) => Object.keys(s.shape).filter((v) => !listed.has(v)))).toEqual({});
  });

  it('holds the defaults', () => {
    for (const [name, schema] of schemas) expect([name, loadConfig(schema, values)]).toEqual([name, loadConfig(schema, {})]);
  });

  it('names no variable that nothing reads', () => {
    const read = new Set([...schemas.flatMap(([, s]) => Object.keys(s.shape)), ...SERVICES.flatMap((s) => (s.portVar ? [s.portVar] : [])), 'TESSERA_NO_INSTALL']);
    expect([...listed].filter((v) => !read.has(v))).toEqual([]);
  });
});
