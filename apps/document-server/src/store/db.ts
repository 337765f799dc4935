/**
 * The document server's database: plain pg statements on the service's schema (`document_server`).
 * `prisma/schema.prisma` defines the tables and migrations; the queries (tag arrays, keyset
 * pages, reference counts under a row lock) are SQL Prisma could only pass through raw.
 */
export { createSqlDb as createDb, type SqlDb as Db } from '@tessera/kit';
