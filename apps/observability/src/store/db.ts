/**
 * Observability's database. Every statement is plain SQL through pg: ingest is the hot path
 * (one transaction of a few statements per batch) and the reads are keyset queries Prisma could
 * not express without raw SQL anyway. `prisma/schema.prisma` defines the tables and migrations.
 */
export { createSqlDb as createDb, type SqlDb as Db } from '@tessera/kit';
