import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';

/**
 * Services reach PostgreSQL through Prisma's Rust-free client and the pg driver adapter: nothing
 * native is downloaded (see README "Data"). Each service owns a PostgreSQL schema, named by the
 * `schema` parameter of its DATABASE_URL, with its own migration history.
 */
export function schemaOf(databaseUrl: string, fallback = 'public'): string {
  return new URL(databaseUrl).searchParams.get('schema') ?? fallback;
}

/** The URL with the service's schema set (keeps an explicit one). */
export function withSchema(databaseUrl: string, schema: string): string {
  const u = new URL(databaseUrl);
  if (!u.searchParams.get('schema')) u.searchParams.set('schema', schema);
  return u.toString();
}

/** Connection string for pg (which does not understand Prisma's `schema` parameter). */
export function pgConnectionString(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  u.searchParams.delete('schema');
  return u.toString();
}

export function prismaAdapter(databaseUrl: string, max = 10): PrismaPg {
  return new PrismaPg({ connectionString: pgConnectionString(databaseUrl), max }, { schema: schemaOf(databaseUrl) });
}

/**
 * A plain pg pool on the service's schema, for hot-path SQL that Prisma would slow down. An idle
 * connection's error (PostgreSQL restarted, the network cut) is not the process's end: it
 * surfaces on the pool's next query, as a storage error the service answers with a 503.
 * Idle connections are kept for minutes, not pg's default 10 s: a closed one is reopened on the
 * next burst, and every prepared statement is parsed and planned again on it. With the default,
 * every pool that went quiet for 10 s reopened all its connections at once under the next load (a
 * 0.6–0.9 s stall of every chat in the open-loop turn benchmark). `allowExitOnIdle`: an idle pool
 * never keeps a process (a script, a test) alive.
 */
const IDLE_CONNECTION_MS = 300_000;

export function pgPool(databaseUrl: string, max = 10): pg.Pool {
  const schema = schemaOf(databaseUrl);
  const pool = new pg.Pool({
    connectionString: pgConnectionString(databaseUrl),
    max,
    idleTimeoutMillis: IDLE_CONNECTION_MS,
    allowExitOnIdle: true,
    options: `-c search_path="${schema}"`,
  });
  pool.on('error', () => undefined);
  return pool;
}

/** A service's database when every statement is plain SQL: the pool, transactions, one close. */
export interface SqlDb {
  pool: pg.Pool;
  /** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Runs `fn` in one transaction on one connection of `pool`: committed when it resolves, rolled
 * back when it throws. `begin` opens it (e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`
 * for reads that must see one snapshot).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

export function createSqlDb(databaseUrl: string, poolSize = 10): SqlDb {
  const pool = pgPool(databaseUrl, poolSize);
  return {
    pool,
    tx: (fn) => inTransaction(pool, fn),
    async close() {
      await pool.end().catch(() => undefined);
    },
  };
}
