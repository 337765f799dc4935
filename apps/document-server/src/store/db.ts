import type { Pool, PoolClient } from 'pg';
import { pgPool } from '@tessera/kit';

/**
 * The document server's database: plain pg statements on the service's schema (`document_server`).
 * `prisma/schema.prisma` defines the tables and migrations; the queries (tag arrays, keyset
 * pages, reference counts under a row lock) are SQL Prisma could only pass through raw.
 */
export interface Db {
  pool: Pool;
  tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function createDb(databaseUrl: string, poolSize = 10): Db {
  const pool = pgPool(databaseUrl, poolSize);
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  });
  return {
    pool,
    async tx(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        c.release();
      }
    },
    async close() {
      await pool.end().catch(() => undefined);
    },
  };
}
