import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pgConnectionString, pgPool } from '../src';
import { freshSchema, TEST_DATABASE_URL } from '../src/testing';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '../../..');
const RUNTIME = join(ROOT, 'apps/runtime');
const MIGRATIONS = join(RUNTIME, 'prisma/migrations');
const PRISMA = join(ROOT, 'node_modules/.bin/prisma');
const migrationNames = () => readdirSync(MIGRATIONS).filter((d) => /^\d/.test(d)).sort();

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: pgConnectionString(url) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function tablesOf(url: string, schema: string): Promise<string[]> {
  return withClient(url, async (c) => {
    const r = await c.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [schema]);
    return r.rows.map((row) => row.table_name);
  });
}

describe('runtime migrations with the real prisma CLI, on an empty database', () => {
  const database = `tessera_mig_${randomBytes(5).toString('hex')}`;
  const dbUrl = (() => {
    const u = new URL(pgConnectionString(TEST_DATABASE_URL));
    u.pathname = `/${database}`;
    u.searchParams.set('schema', 'runtime');
    return u.toString();
  })();
  const prisma = (...args: string[]) =>
    run(PRISMA, args, {
      cwd: RUNTIME,
      env: { ...process.env, DATABASE_URL: dbUrl, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      timeout: 60_000,
    });

  beforeAll(async () => {
    await withClient(TEST_DATABASE_URL, (c) => c.query(`CREATE DATABASE "${database}"`));
  });
  afterAll(async () => {
    await withClient(TEST_DATABASE_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
  });

  it('migrate deploy creates the runtime schema, and migrate status reports it up to date', async () => {
    expect(await tablesOf(dbUrl, 'runtime')).toEqual([]);

    const deploy = await prisma('migrate', 'deploy');
    expect(deploy.stdout).toMatch(/All migrations have been successfully applied|No pending migrations/);

    const tables = await tablesOf(dbUrl, 'runtime');
    expect(tables).toEqual(expect.arrayContaining(['_prisma_migrations', 'chats', 'chat_events']));
    // Nothing lands in public: the service owns its schema.
    expect(await tablesOf(dbUrl, 'public')).toEqual([]);

    const applied = await withClient(dbUrl, (c) =>
      c.query<{ migration_name: string; finished_at: Date | null }>('SELECT migration_name, finished_at FROM runtime._prisma_migrations ORDER BY migration_name'),
    );
    expect(applied.rows.map((r) => r.migration_name)).toEqual(migrationNames());
    expect(applied.rows.every((r) => r.finished_at !== null)).toBe(true);

    const status = await prisma('migrate', 'status');
    expect(status.stdout).toContain('Database schema is up to date!');
  }, 90_000);
});

describe("every app's migrations with the real prisma CLI, on an empty database", () => {
  // The schema engine (WebAssembly) splits a script into statements its own way: a ';' in a comment
  // broke a migration that the pg client (freshSchema) applied whole. Only the CLI tells.
  const apps = readdirSync(join(ROOT, 'apps')).filter((a) => existsSync(join(ROOT, 'apps', a, 'prisma/migrations')));
  const database = `tessera_mig_${randomBytes(5).toString('hex')}`;
  beforeAll(async () => {
    await withClient(TEST_DATABASE_URL, (c) => c.query(`CREATE DATABASE "${database}"`));
  });
  afterAll(async () => {
    await withClient(TEST_DATABASE_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
  });

  it.each(apps.filter((a) => a !== 'runtime'))('%s: migrate deploy applies every migration', async (app) => {
    const u = new URL(pgConnectionString(TEST_DATABASE_URL));
    u.pathname = `/${database}`;
    u.searchParams.set('schema', app.replace(/-/g, '_'));
    const deploy = await run(PRISMA, ['migrate', 'deploy'], {
      cwd: join(ROOT, 'apps', app),
      env: { ...process.env, DATABASE_URL: u.toString(), CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
      timeout: 60_000,
    });
    expect(deploy.stdout).toMatch(/All migrations have been successfully applied/);
  }, 90_000);
});

describe('freshSchema', () => {
  it('yields a schema of its own with the runtime tables, and drops it', async () => {
    const fresh = await freshSchema(MIGRATIONS, 'kit');
    try {
      expect(new URL(fresh.url).searchParams.get('schema')).toBe(fresh.schema);
      expect(fresh.schema).toMatch(/^kit_[0-9a-f]{10}$/);
      expect(await tablesOf(fresh.url, fresh.schema)).toEqual(expect.arrayContaining(['chats', 'chat_events']));
      // The kit's pg pool on that URL reaches the tables unqualified (search_path is the schema).
      const pool = pgPool(fresh.url, 1);
      try {
        const r = await pool.query('SELECT (SELECT count(*) FROM chats)::int AS chats, current_schema() AS schema');
        expect(r.rows[0]).toEqual({ chats: 0, schema: fresh.schema });
      } finally {
        await pool.end();
      }
    } finally {
      await fresh.drop();
    }
    expect(await tablesOf(TEST_DATABASE_URL, fresh.schema)).toEqual([]);
  });
});
