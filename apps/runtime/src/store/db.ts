import type { Pool } from 'pg';
import { pgPool, prismaAdapter } from '@tessera/kit';
import { Prisma, PrismaClient } from '../../prisma/generated/client';

export { Prisma };

/**
 * The runtime's database: Prisma for chats, inputs, tool calls and attachments; a plain pg pool
 * for the timeline's append and replay, the hot path where one SQL statement per batch matters.
 */
export interface Db {
  prisma: PrismaClient;
  pool: Pool;
  close(): Promise<void>;
}

export function createDb(databaseUrl: string, poolSize = 10): Db {
  const prisma = new PrismaClient({ adapter: prismaAdapter(databaseUrl, poolSize) });
  const pool = pgPool(databaseUrl, poolSize);
  return {
    prisma,
    pool,
    async close() {
      await Promise.allSettled([prisma.$disconnect(), pool.end()]);
    },
  };
}
