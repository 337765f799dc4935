import type { Pool } from 'pg';
import { pgPool } from '@tessera/kit';

/**
 * Observability's database. Every statement is plain SQL through pg: ingest is the hot path
 * (one transaction of a few statements per batch) and the reads are keyset queries Prisma could
 * not express without raw SQL anyway. `prisma/schema.prisma` defines the tables and migrations.
 */
export interface Db {
  pool: Pool;
  close(): Promise<void>;
}

export function createDb(databaseUrl: string, poolSize = 10): Db {
  const pool = pgPool(databaseUrl, poolSize);
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  });
  return {
    pool,
    async close() {
      await pool.end().catch(() => undefined);
    },
  };
}
