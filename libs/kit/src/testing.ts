import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pgConnectionString } from './db';

/** Where tests find Redis and PostgreSQL (`npm test` makes sure both run). */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://tessera:tessera@127.0.0.1:5432/tessera';

/**
 * A fresh PostgreSQL schema for one test file with the service's migrations applied, the same
 * SQL files `prisma migrate deploy` applies. Returns a DATABASE_URL naming it and a drop().
 */
export async function freshSchema(migrationsDir: string, prefix = 't'): Promise<{ url: string; schema: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: pgConnectionString(TEST_DATABASE_URL) });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`SET search_path TO "${schema}"`);
    if (existsSync(migrationsDir)) {
      for (const dir of readdirSync(migrationsDir).filter((d) => /^\d/.test(d)).sort()) {
        await client.query(readFileSync(join(migrationsDir, dir, 'migration.sql'), 'utf8'));
      }
    }
  } finally {
    await client.end();
  }
  const u = new URL(TEST_DATABASE_URL);
  u.searchParams.set('schema', schema);
  return {
    url: u.toString(),
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: pgConnectionString(TEST_DATABASE_URL) });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    },
  };
}

/** A Redis key prefix unique to one test file, so parallel test files never share keys. */
export function testPrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}`;
}
