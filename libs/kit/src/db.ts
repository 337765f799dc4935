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

/** A plain pg pool on the service's schema, for hot-path SQL that Prisma would slow down. */
export function pgPool(databaseUrl: string, max = 10): pg.Pool {
  const schema = schemaOf(databaseUrl);
  return new pg.Pool({ connectionString: pgConnectionString(databaseUrl), max, options: `-c search_path="${schema}"` });
}
